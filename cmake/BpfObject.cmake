# Turns CO-RE eBPF sources into a libbpf skeleton target.
#
#   kspan_bpf_skeleton(NAME kspan SOURCES a.bpf.c b.bpf.c)
#
# gives an INTERFACE target `kspan_skel` whose include path holds `kspan.skel.h`.
# Each source is compiled with clang (-g -O2 -target bpf -Wall -Werror), the objects are
# linked with `bpftool gen object`, and `bpftool gen skeleton` writes the header.
# vmlinux.h is generated once, at configure time, from the running kernel's BTF.

find_program(KSPAN_BPF_CLANG NAMES clang-14 clang REQUIRED)
find_program(KSPAN_BPFTOOL NAMES bpftool PATHS /usr/sbin /sbin REQUIRED)

set(KSPAN_BTF_PATH "/sys/kernel/btf/vmlinux" CACHE FILEPATH "Kernel BTF used to generate vmlinux.h")
set(KSPAN_VMLINUX_DIR ${CMAKE_BINARY_DIR}/bpf/vmlinux)
if(NOT EXISTS ${KSPAN_VMLINUX_DIR}/vmlinux.h)
  if(NOT EXISTS ${KSPAN_BTF_PATH})
    message(FATAL_ERROR "kspan needs kernel BTF to build its CO-RE programs, and "
      "${KSPAN_BTF_PATH} does not exist. Use a kernel built with CONFIG_DEBUG_INFO_BTF=y, "
      "or point -DKSPAN_BTF_PATH= at a BTF file for your kernel.")
  endif()
  file(MAKE_DIRECTORY ${KSPAN_VMLINUX_DIR})
  execute_process(
    COMMAND ${KSPAN_BPFTOOL} btf dump file ${KSPAN_BTF_PATH} format c
    OUTPUT_FILE ${KSPAN_VMLINUX_DIR}/vmlinux.h
    RESULT_VARIABLE rc)
  if(NOT rc EQUAL 0)
    file(REMOVE ${KSPAN_VMLINUX_DIR}/vmlinux.h)
    message(FATAL_ERROR "bpftool could not dump ${KSPAN_BTF_PATH} (exit ${rc})")
  endif()
endif()

if(CMAKE_SYSTEM_PROCESSOR MATCHES "x86_64|AMD64")
  set(KSPAN_BPF_ARCH x86)
elseif(CMAKE_SYSTEM_PROCESSOR MATCHES "aarch64|arm64")
  set(KSPAN_BPF_ARCH arm64)
else()
  message(FATAL_ERROR "kspan: unsupported architecture ${CMAKE_SYSTEM_PROCESSOR}")
endif()

function(kspan_bpf_skeleton)
  cmake_parse_arguments(ARG "" "NAME" "SOURCES;DEPENDS" ${ARGN})
  set(out_dir ${CMAKE_CURRENT_BINARY_DIR})
  set(objects)
  foreach(src ${ARG_SOURCES})
    get_filename_component(base ${src} NAME_WE)
    set(obj ${out_dir}/${base}.bpf.o)
    add_custom_command(
      OUTPUT ${obj}
      COMMAND ${KSPAN_BPF_CLANG} -g -O2 -target bpf -D__TARGET_ARCH_${KSPAN_BPF_ARCH}
              -Wall -Werror
              -I${KSPAN_VMLINUX_DIR} -I${CMAKE_SOURCE_DIR}/include -I${CMAKE_CURRENT_SOURCE_DIR}
              -c ${CMAKE_CURRENT_SOURCE_DIR}/${src} -o ${obj}
      DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/${src} ${ARG_DEPENDS}
      COMMENT "BPF ${src}"
      VERBATIM)
    list(APPEND objects ${obj})
  endforeach()
  set(linked ${out_dir}/${ARG_NAME}.bpf.o)
  set(skel ${out_dir}/${ARG_NAME}.skel.h)
  add_custom_command(
    OUTPUT ${linked} ${skel}
    COMMAND ${KSPAN_BPFTOOL} gen object ${linked} ${objects}
    COMMAND ${KSPAN_BPFTOOL} gen skeleton ${linked} name ${ARG_NAME}_bpf > ${skel}
    DEPENDS ${objects}
    COMMENT "BPF skeleton ${ARG_NAME}.skel.h"
    VERBATIM)
  add_custom_target(${ARG_NAME}_skel_gen DEPENDS ${skel})
  add_library(${ARG_NAME}_skel INTERFACE)
  add_dependencies(${ARG_NAME}_skel ${ARG_NAME}_skel_gen)
  target_include_directories(${ARG_NAME}_skel INTERFACE ${out_dir})
endfunction()
