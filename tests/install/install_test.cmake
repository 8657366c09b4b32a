# cmake -DBUILD_DIR=... -DWORK_DIR=... -DCONSUMER_DIR=... -DEXAMPLE_DIR=... -DGENERATOR=... -P install_test.cmake
function(run)
    execute_process(COMMAND ${ARGN} RESULT_VARIABLE result)
    if(NOT result EQUAL 0)
        string(REPLACE ";" " " command "${ARGN}")
        message(FATAL_ERROR "failed (${result}): ${command}")
    endif()
endfunction()

file(REMOVE_RECURSE "${WORK_DIR}")
set(prefix "${WORK_DIR}/prefix")
run(${CMAKE_COMMAND} --install "${BUILD_DIR}" --prefix "${prefix}")

foreach(project consumer example)
    if(project STREQUAL "consumer")
        set(source "${CONSUMER_DIR}")
    else()
        set(source "${EXAMPLE_DIR}")
    endif()
    run(${CMAKE_COMMAND} -S "${source}" -B "${WORK_DIR}/${project}" -G "${GENERATOR}"
        "-DCMAKE_PREFIX_PATH=${prefix}")
    run(${CMAKE_COMMAND} --build "${WORK_DIR}/${project}")
endforeach()

run("${WORK_DIR}/consumer/qtnotif_consumer")
message(STATUS "the installed package builds and works")
