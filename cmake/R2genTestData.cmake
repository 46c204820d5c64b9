# Fixture files larger than 4 MiB are committed in parts (<file>.part0, .part1, ...) so that no
# tracked file is large; this joins each group back into <file> (git-ignored) at configure time,
# before the tests, the demo model or the converter read it. Rewritten only when a part is newer.
file(GLOB_RECURSE r2gen_first_parts "${PROJECT_SOURCE_DIR}/tests/data/*.part0")
foreach(first ${r2gen_first_parts})
    string(REGEX REPLACE "\\.part0$" "" joined "${first}")
    file(GLOB parts "${joined}.part*")
    list(SORT parts COMPARE NATURAL)
    set(stale FALSE)
    foreach(part ${parts})
        if(NOT EXISTS "${joined}" OR "${part}" IS_NEWER_THAN "${joined}")
            set(stale TRUE)
        endif()
    endforeach()
    if(stale)
        execute_process(COMMAND ${CMAKE_COMMAND} -E cat ${parts} OUTPUT_FILE "${joined}.tmp"
                        RESULT_VARIABLE joined_status)
        if(NOT joined_status EQUAL 0)
            message(FATAL_ERROR "cannot join the parts of ${joined}")
        endif()
        file(RENAME "${joined}.tmp" "${joined}")
    endif()
endforeach()
