# FindTensorRT: TensorRT's headers and libnvinfer as its three distributions lay them out.
#
#   tarball            <root>/include/NvInfer.h, <root>/lib/libnvinfer.so -> libnvinfer.so.N -> libnvinfer.so.N.x.y
#   Debian/RPM         /usr/include/x86_64-linux-gnu/NvInfer.h, /usr/lib/x86_64-linux-gnu/libnvinfer.so.N
#                      (the unversioned libnvinfer.so only with the -dev package)
#   pip wheels         <site-packages>/tensorrt_libs/libnvinfer.so.N: no headers, no unversioned link
#
# Inputs (CMake or environment variables): TensorRT_ROOT (tarball root), TensorRT_INCLUDE_DIR (e.g. a
# TensorRT source checkout's include/, since wheels ship no headers), TensorRT_LIBRARY_DIR, TensorRT_LIBRARY;
# TensorRT_PYTHON or Python3_EXECUTABLE: the interpreter whose `tensorrt_libs` package is searched.
# Components: `nvinfer` (the library). Results: TensorRT_FOUND, TensorRT_INCLUDE_DIR, TensorRT_VERSION,
# TensorRT_VERSION_MAJOR, TensorRT_LIBRARY, TensorRT_nvinfer_FOUND and the imported target TensorRT::nvinfer.
#
# The library is searched by its versioned name first (libnvinfer.so.<major of the headers>), which is the
# only name wheels and runtime packages ship, then unversioned. A versioned library of another major than
# the headers is not taken: headers and library must be one release line.

set(_trt_hints)
foreach(_v TensorRT_ROOT TensorRT_LIBRARY_DIR)
  if(DEFINED ${_v})
    list(APPEND _trt_hints "${${_v}}")
  endif()
  if(DEFINED ENV{${_v}})
    list(APPEND _trt_hints "$ENV{${_v}}")
  endif()
endforeach()

# pip: ask the interpreter where `tensorrt_libs` is, without importing it (its __init__ loads the libraries).
set(_trt_python "${TensorRT_PYTHON}")
if(NOT _trt_python AND DEFINED Python3_EXECUTABLE)
  set(_trt_python "${Python3_EXECUTABLE}")
endif()
if(NOT _trt_python)
  find_program(_trt_python NAMES python3 python)
endif()
set(TensorRT_WHEEL_DIRS "")
if(_trt_python)
  execute_process(
    COMMAND "${_trt_python}" -c
      "import importlib.util as u; s = u.find_spec('tensorrt_libs'); print(';'.join(s.submodule_search_locations) if s else '')"
    OUTPUT_VARIABLE TensorRT_WHEEL_DIRS OUTPUT_STRIP_TRAILING_WHITESPACE ERROR_QUIET RESULT_VARIABLE _trt_py_rc)
  if(NOT _trt_py_rc EQUAL 0)
    set(TensorRT_WHEEL_DIRS "")
  endif()
endif()

find_path(TensorRT_INCLUDE_DIR NvInfer.h
  HINTS ${_trt_hints} ENV TensorRT_INCLUDE_DIR
  PATH_SUFFIXES include include/x86_64-linux-gnu include/aarch64-linux-gnu)

set(TensorRT_VERSION "")
set(TensorRT_VERSION_MAJOR "")
if(TensorRT_INCLUDE_DIR AND EXISTS "${TensorRT_INCLUDE_DIR}/NvInferVersion.h")
  file(READ "${TensorRT_INCLUDE_DIR}/NvInferVersion.h" _trt_version_text)
  set(_trt_parts)
  foreach(_part MAJOR MINOR PATCH)
    # TensorRT 10.11+ defines TRT_<PART>_ENTERPRISE and aliases NV_TENSORRT_<PART> to it; older releases
    # define NV_TENSORRT_<PART> as a number.
    if(_trt_version_text MATCHES "#define TRT_${_part}_ENTERPRISE +([0-9]+)")
      list(APPEND _trt_parts "${CMAKE_MATCH_1}")
    elseif(_trt_version_text MATCHES "#define NV_TENSORRT_${_part} +([0-9]+)")
      list(APPEND _trt_parts "${CMAKE_MATCH_1}")
    endif()
  endforeach()
  list(LENGTH _trt_parts _trt_nparts)
  if(_trt_nparts EQUAL 3)
    string(REPLACE ";" "." TensorRT_VERSION "${_trt_parts}")
    list(GET _trt_parts 0 TensorRT_VERSION_MAJOR)
  endif()
endif()

set(_trt_lib_dirs ${_trt_hints} ${TensorRT_WHEEL_DIRS})
if(TensorRT_INCLUDE_DIR)
  get_filename_component(_trt_include_parent "${TensorRT_INCLUDE_DIR}" DIRECTORY)
  list(APPEND _trt_lib_dirs "${_trt_include_parent}")  # a tarball's <root>/include -> <root>/lib
endif()
set(_trt_names)
if(TensorRT_VERSION_MAJOR)
  list(APPEND _trt_names "libnvinfer.so.${TensorRT_VERSION_MAJOR}")
endif()
list(APPEND _trt_names nvinfer libnvinfer.so)
find_library(TensorRT_LIBRARY NAMES ${_trt_names}
  HINTS ${_trt_lib_dirs}
  PATH_SUFFIXES lib lib64 lib/x86_64-linux-gnu lib/aarch64-linux-gnu targets/x86_64-linux-gnu/lib)

# What else is there, to say why nothing matched (e.g. a wheel of another major than the headers).
set(TensorRT_OTHER_LIBRARIES "")
if(NOT TensorRT_LIBRARY)
  foreach(_dir IN LISTS _trt_lib_dirs)
    foreach(_sub_dir "${_dir}" "${_dir}/lib" "${_dir}/lib64" "${_dir}/lib/x86_64-linux-gnu")
      file(GLOB _trt_found "${_sub_dir}/libnvinfer.so*")
      list(APPEND TensorRT_OTHER_LIBRARIES ${_trt_found})
    endforeach()
  endforeach()
  list(REMOVE_DUPLICATES TensorRT_OTHER_LIBRARIES)
endif()

set(TensorRT_nvinfer_FOUND FALSE)
if(TensorRT_LIBRARY)
  set(TensorRT_nvinfer_FOUND TRUE)
  if(NOT TARGET TensorRT::nvinfer)
    add_library(TensorRT::nvinfer SHARED IMPORTED)
    set_target_properties(TensorRT::nvinfer PROPERTIES IMPORTED_LOCATION "${TensorRT_LIBRARY}")
    if(TensorRT_INCLUDE_DIR)
      set_target_properties(TensorRT::nvinfer PROPERTIES INTERFACE_INCLUDE_DIRECTORIES "${TensorRT_INCLUDE_DIR}")
    endif()
  endif()
endif()

set(TensorRT_FOUND FALSE)
if(TensorRT_INCLUDE_DIR)
  set(TensorRT_FOUND TRUE)
endif()
set(_trt_missing_components)
foreach(_comp IN LISTS TensorRT_FIND_COMPONENTS)
  if(NOT TensorRT_${_comp}_FOUND)
    list(APPEND _trt_missing_components ${_comp})
    if(TensorRT_FIND_REQUIRED_${_comp})
      set(TensorRT_FOUND FALSE)
    endif()
  endif()
endforeach()

if(NOT TensorRT_FOUND AND TensorRT_FIND_REQUIRED)
  set(_trt_why "")
  if(NOT TensorRT_INCLUDE_DIR)
    string(APPEND _trt_why " No NvInfer.h found: pass -DTensorRT_INCLUDE_DIR=<dir with NvInfer.h> (pip wheels ship no"
                           " headers; use the include/ of the same release's tarball or of github.com/NVIDIA/TensorRT)"
                           " or -DTensorRT_ROOT=<tarball root>.")
  endif()
  if("nvinfer" IN_LIST _trt_missing_components)
    string(APPEND _trt_why " No libnvinfer.so.${TensorRT_VERSION_MAJOR} (or libnvinfer.so) found in: ${_trt_lib_dirs}"
                           " or the system library paths. Install TensorRT ${TensorRT_VERSION_MAJOR} (pip install"
                           " tensorrt, which puts libnvinfer.so.N in site-packages/tensorrt_libs; point"
                           " -DPython3_EXECUTABLE at that interpreter) or pass -DTensorRT_LIBRARY=<path>.")
    if(TensorRT_OTHER_LIBRARIES)
      string(APPEND _trt_why " Found only ${TensorRT_OTHER_LIBRARIES}, which does not match the headers' version"
                             " ${TensorRT_VERSION}.")
    endif()
  endif()
  message(FATAL_ERROR "TensorRT was required but not found.${_trt_why}")
endif()

if(NOT TensorRT_FIND_QUIETLY AND TensorRT_INCLUDE_DIR)
  message(STATUS "TensorRT headers: ${TensorRT_INCLUDE_DIR} (version ${TensorRT_VERSION}); "
                 "library: ${TensorRT_LIBRARY}")
endif()
mark_as_advanced(TensorRT_INCLUDE_DIR TensorRT_LIBRARY)
