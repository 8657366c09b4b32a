# qtnotif_add_library(<target> EXPORT_NAME <name> SOURCES ... PUBLIC_HEADERS ...)
#
# Builds one of the SDK's shared libraries with the project's strict settings, an export
# header (<target>_export.h), forwarding headers so that in-tree code includes
# <QtNotif/header.h> exactly as an installed consumer does, and install rules.
function(qtnotif_add_library target)
    cmake_parse_arguments(arg "" "EXPORT_NAME" "SOURCES;PUBLIC_HEADERS" ${ARGN})
    add_library(${target} SHARED ${arg_SOURCES} ${arg_PUBLIC_HEADERS})
    add_library(QtNotif::${arg_EXPORT_NAME} ALIAS ${target})
    set_target_properties(${target} PROPERTIES
        EXPORT_NAME ${arg_EXPORT_NAME}
        OUTPUT_NAME QtNotif${arg_EXPORT_NAME}
        VERSION ${PROJECT_VERSION}
        SOVERSION ${PROJECT_VERSION_MAJOR}
        CXX_VISIBILITY_PRESET hidden
        VISIBILITY_INLINES_HIDDEN ON
        # Installed side by side: each finds the others wherever the prefix is.
        INSTALL_RPATH "$ORIGIN")
    # The public headers use concepts: consumers need C++20 too, and get it from the target.
    target_compile_features(${target} PUBLIC cxx_std_20)
    qtnotif_strict_settings(${target})

    set(forward_dir "${PROJECT_BINARY_DIR}/include/QtNotif")
    string(TOLOWER "${target}_export.h" export_file)
    generate_export_header(${target} EXPORT_FILE_NAME "${forward_dir}/${export_file}")
    foreach(header IN LISTS arg_PUBLIC_HEADERS)
        get_filename_component(name "${header}" NAME)
        get_filename_component(absolute "${header}" ABSOLUTE)
        file(CONFIGURE OUTPUT "${forward_dir}/${name}"
             CONTENT "#include \"${absolute}\"\n")
    endforeach()
    target_include_directories(${target} PUBLIC
        "$<BUILD_INTERFACE:${PROJECT_BINARY_DIR}/include>"
        "$<INSTALL_INTERFACE:${CMAKE_INSTALL_INCLUDEDIR}>")

    install(TARGETS ${target} EXPORT QtNotifTargets
        LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
        ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
        RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
    install(FILES ${arg_PUBLIC_HEADERS} "${forward_dir}/${export_file}"
        DESTINATION "${QTNOTIF_INSTALL_INCLUDEDIR}")
endfunction()

# Warnings and the strict Qt defines every target of the project builds with. Tests pass
# ALLOW_ASCII_CASTS: string literals as QString keep test tables readable.
function(qtnotif_strict_settings target)
    cmake_parse_arguments(arg "ALLOW_ASCII_CASTS" "" "" ${ARGN})
    target_compile_options(${target} PRIVATE -Wall -Wextra -Wpedantic)
    if(NOT arg_ALLOW_ASCII_CASTS)
        target_compile_definitions(${target} PRIVATE QT_NO_CAST_FROM_ASCII)
    endif()
    target_compile_definitions(${target} PRIVATE
        QT_NO_KEYWORDS
        QT_NO_FOREACH
        QT_NO_NARROWING_CONVERSIONS_IN_CONNECT
        QT_USE_QSTRINGBUILDER)
endfunction()
