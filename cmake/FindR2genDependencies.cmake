# The four libraries libr2gen is built on, each as an imported target r2gen::<name>.
include(${CMAKE_CURRENT_LIST_DIR}/R2genFindLibrary.cmake)

r2gen_find_library(OpenBLAS HEADER cblas.h LIBRARY openblas DEBIAN libopenblas-dev
                   PATH_SUFFIXES openblas x86_64-linux-gnu/openblas-pthread)
r2gen_find_library(DNNL HEADER dnnl.h LIBRARY dnnl DEBIAN libdnnl-dev)
r2gen_find_library(STB HEADER stb_image.h LIBRARY stb DEBIAN libstb-dev PATH_SUFFIXES stb)

# JPEG goes through libjpeg-turbo because the reference decoded JPEGs with it (through PIL);
# without it the build falls back to stb_image's decoder, which differs by a few grey levels.
option(R2GEN_WITH_LIBJPEG "Decode JPEG with libjpeg-turbo (as the reference did)" ON)
if(R2GEN_WITH_LIBJPEG)
    r2gen_find_library(JPEG HEADER jpeglib.h LIBRARY jpeg DEBIAN libjpeg62-turbo-dev)
endif()

find_package(OpenMP REQUIRED COMPONENTS C)
