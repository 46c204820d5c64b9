# r2gen_find_library(<name> HEADER <file> LIBRARY <lib> DEBIAN <package> [PATH_SUFFIXES ...])
#
# Finds a header + library pair and defines the imported target r2gen::<name>. When either is
# missing, configuration fails with one line naming the Debian package that provides it.
function(r2gen_find_library name)
    cmake_parse_arguments(ARG "" "HEADER;LIBRARY;DEBIAN" "PATH_SUFFIXES" ${ARGN})
    find_path(${name}_INCLUDE_DIR ${ARG_HEADER} PATH_SUFFIXES ${ARG_PATH_SUFFIXES})
    find_library(${name}_LIBRARY NAMES ${ARG_LIBRARY})
    if(NOT ${name}_INCLUDE_DIR OR NOT ${name}_LIBRARY)
        message(FATAL_ERROR "${name} not found: install the Debian package ${ARG_DEBIAN} (apt-get install ${ARG_DEBIAN})")
    endif()
    add_library(r2gen::${name} UNKNOWN IMPORTED)
    set_target_properties(r2gen::${name} PROPERTIES
        IMPORTED_LOCATION "${${name}_LIBRARY}"
        INTERFACE_INCLUDE_DIRECTORIES "${${name}_INCLUDE_DIR}")
    message(STATUS "${name}: ${${name}_LIBRARY}")
endfunction()
