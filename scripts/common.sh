# Shared by scripts/test.sh and scripts/demo.sh: installs what a fresh Debian 12 machine lacks
# and configures and builds the project. Source it; do not run it.

QTNOTIF_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
QTNOTIF_BUILD_DIR=${QTNOTIF_BUILD_DIR:-$QTNOTIF_ROOT/build}

# The Debian packages the build and the tests need. The server links hiredis (the Redis
# backplane) and libjwt (JwtAuthenticator); the cluster tests run a real redis-server, and nginx
# in front of the demo nodes; the JWT and TLS tests make their keys and certificates with openssl;
# the fuzzer (fuzz/) builds with clang and libFuzzer.
QTNOTIF_PACKAGES=(
    cmake ninja-build g++ pkg-config libhiredis-dev libjwt-dev libssl-dev openssl redis-server
    nginx-light
    clang-14 libfuzzer-14-dev
    qt6-base-dev qt6-base-dev-tools qt6-websockets-dev libgl-dev
    qt6-declarative-dev qt6-declarative-dev-tools
    qml6-module-qtqml qml6-module-qtqml-models qml6-module-qtqml-workerscript qml6-module-qtquick
    qml6-module-qtquick-controls qml6-module-qtquick-layouts qml6-module-qtquick-templates
    qml6-module-qtquick-window qml6-module-qttest
)

log() { printf '\033[1m==> %s\033[0m\n' "$*"; }

# Installs the packages that are not installed yet; apt-get runs only when something is missing.
install_packages() {
    local missing=()
    for package in "$@"; do
        dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q 'install ok installed' \
            || missing+=("$package")
    done
    if [ ${#missing[@]} -eq 0 ]; then
        return 0
    fi
    log "Installing ${missing[*]}"
    local sudo=()
    [ "$(id -u)" -eq 0 ] || sudo=(sudo)
    "${sudo[@]}" apt-get update -qq
    DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends \
        "${missing[@]}"
}

# configure_and_build [extra cmake arguments...]
configure_and_build() {
    log "Configuring in $QTNOTIF_BUILD_DIR"
    cmake -S "$QTNOTIF_ROOT" -B "$QTNOTIF_BUILD_DIR" -G Ninja \
        -DCMAKE_BUILD_TYPE="${CMAKE_BUILD_TYPE:-RelWithDebInfo}" "$@"
    log "Building"
    cmake --build "$QTNOTIF_BUILD_DIR" --parallel "$(nproc)"
}
