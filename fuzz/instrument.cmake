# Included by the top-level CMakeLists.txt in the fuzzer's own build (QTNOTIF_FUZZER_BUILD=ON,
# made by fuzz/CMakeLists.txt): every target is compiled with libFuzzer's coverage
# instrumentation, AddressSanitizer and UBSan, and keeps Q_ASSERT, so that memory errors,
# undefined behaviour and broken invariants all end the run with a crash the fuzzer reports.
if(NOT CMAKE_CXX_COMPILER_ID MATCHES "Clang")
    message(FATAL_ERROR "QTNOTIF_FUZZER_BUILD needs clang: -DCMAKE_CXX_COMPILER=clang++-14")
endif()
add_compile_options(-fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=all
    -fno-omit-frame-pointer)
add_link_options(-fsanitize=address,undefined)
add_compile_definitions(QT_FORCE_ASSERTS)
