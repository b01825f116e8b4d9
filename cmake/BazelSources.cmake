# The Bazel BUILD files are the one list of sources: CMake reads the srcs
# and hdrs of a rule from them, so adding a file to a Bazel target is the
# whole change for both builds.
#
#   shmring_bazel_sources(<package> <rule> <srcs-var> <hdrs-var>)
#
# sets <srcs-var> and <hdrs-var> to the absolute paths of the files named in
# the rule's `srcs` and `hdrs` in <package>/BUILD (relative to the top of the
# source tree). The lists must be plain lists of file names, one string per
# line as buildifier writes them (or all on the rule's line); anything else
# (glob(), select(), labels, `+`) stops the configure step with the line it
# could not read. Every rule read is written to
# ${PROJECT_BINARY_DIR}/bazel-sources.txt ("//pkg:rule attr file" per line),
# which scripts/check-build-lists compares with `bazel query`.

set(SHMRING_BAZEL_MANIFEST "${PROJECT_BINARY_DIR}/bazel-sources.txt")
file(WRITE "${SHMRING_BAZEL_MANIFEST}" "")

function(_shmring_bazel_fail build_file rule lineno line why)
  message(FATAL_ERROR
    "${build_file}:${lineno}: rule \"${rule}\": ${why}\n"
    "  ${line}\n"
    "CMake reads srcs/hdrs from this BUILD file (cmake/BazelSources.cmake) "
    "and understands only plain lists of file names, one \"name\" per line. "
    "Keep the list plain, or list these files by hand in the CMakeLists.txt "
    "that calls shmring_bazel_sources().")
endfunction()

# Appends the quoted file names in `text` ("a.cc", "b.h",) to `var`; sets
# `err` to why `text` is not that ("" if it is).
function(_shmring_bazel_items text var err)
  set(items ${${var}})
  set(${err} "" PARENT_SCOPE)
  string(REGEX REPLACE "\"[^\"]*\"" "" rest "${text}")
  string(REGEX REPLACE "[ \t,]" "" rest "${rest}")
  if(NOT rest STREQUAL "")
    set(${err} "not a plain list of file names" PARENT_SCOPE)
    return()
  endif()
  string(REGEX MATCHALL "\"[^\"]*\"" quoted "${text}")
  foreach(q IN LISTS quoted)
    string(REGEX REPLACE "^\"(.*)\"$" "\\1" name "${q}")
    if(name MATCHES "^[:/@]" OR name MATCHES ":" OR name STREQUAL "")
      set(${err} "\"${name}\" is a label, not a file of this package"
        PARENT_SCOPE)
      return()
    endif()
    list(APPEND items "${name}")
  endforeach()
  set(${var} "${items}" PARENT_SCOPE)
endfunction()

function(shmring_bazel_sources package rule srcs_var hdrs_var)
  set(build_file "${PROJECT_SOURCE_DIR}/${package}/BUILD")
  if(NOT EXISTS "${build_file}")
    message(FATAL_ERROR "shmring_bazel_sources: ${build_file} does not exist")
  endif()
  set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS
    "${build_file}")

  file(READ "${build_file}" content)
  # CMake lists treat ';' as a separator and '[' ']' as grouping: hide them
  # before splitting the file into lines.
  string(REPLACE ";" "<SEMI>" content "${content}")
  string(REPLACE "[" "<LB>" content "${content}")
  string(REPLACE "]" "<RB>" content "${content}")
  string(REPLACE "\n" ";" lines "${content}")

  set(state outside)     # outside | rule | list
  set(name "")
  set(attr "")
  set(found FALSE)
  set(srcs "")
  set(hdrs "")
  set(lineno 0)
  set(why "")
  set(bad_line "")
  foreach(raw IN LISTS lines)
    math(EXPR lineno "${lineno} + 1")
    # Drop a trailing comment (file names never hold '#' or '"' after it).
    string(REGEX REPLACE "[ \t]*#[^\"]*$" "" line "${raw}")
    string(REPLACE "<LB>" "[" shown "${raw}")
    string(REPLACE "<RB>" "]" shown "${shown}")
    if(state STREQUAL "outside")
      if(line MATCHES "^[A-Za-z_][A-Za-z0-9_.]*\\((.*)\\)$")
        # A rule on one line: cc_library(name = "x", srcs = ["a.cc"])
        set(body "${CMAKE_MATCH_1}")
        if(body MATCHES "name = \"${rule}\"")
          set(found TRUE)
          foreach(a srcs hdrs)
            if(body MATCHES "(^|[ ,])${a} = <LB>([^<]*)<RB>")
              _shmring_bazel_items("${CMAKE_MATCH_2}" ${a} why)
              if(why)
                _shmring_bazel_fail("${build_file}" "${rule}" "${lineno}"
                  "${shown}" "${why}")
              endif()
            elseif(body MATCHES "(^|[ ,])${a} = ")
              _shmring_bazel_fail("${build_file}" "${rule}" "${lineno}"
                "${shown}" "${a} is not a plain list")
            endif()
          endforeach()
        endif()
      elseif(line MATCHES "^[A-Za-z_][A-Za-z0-9_.]*\\($")
        set(state rule)
        set(name "")
        set(rule_srcs "")
        set(rule_hdrs "")
        set(bad_line "")
      endif()
    elseif(state STREQUAL "rule")
      if(line MATCHES "^\\)")
        if(name STREQUAL rule)
          if(bad_line)
            # Only the rule we read must be readable.
            _shmring_bazel_fail("${build_file}" "${rule}" "${bad_line}"
              "${bad_text}" "${bad_why}")
          endif()
          set(found TRUE)
          set(srcs "${rule_srcs}")
          set(hdrs "${rule_hdrs}")
        endif()
        set(state outside)
      elseif(line MATCHES "^    name = \"([^\"]*)\",?$")
        set(name "${CMAKE_MATCH_1}")
      elseif(line MATCHES "^    (srcs|hdrs) = <LB>(.*)<RB>,?$")
        set(attr "${CMAKE_MATCH_1}")
        _shmring_bazel_items("${CMAKE_MATCH_2}" rule_${attr} why)
      elseif(line MATCHES "^    (srcs|hdrs) = <LB>$")
        set(attr "${CMAKE_MATCH_1}")
        set(state list)
      elseif(line MATCHES "^    (srcs|hdrs) =")
        set(why "${CMAKE_MATCH_1} is not a plain list")  # glob(), select()
      endif()
    elseif(state STREQUAL "list")
      if(line MATCHES "^    <RB>,?$")
        set(state rule)
      elseif(line MATCHES "^[ \t]*$")
      else()
        _shmring_bazel_items("${line}" rule_${attr} why)
      endif()
    endif()
    # An unreadable line is an error only in the rule we read, and whose
    # rule it is shows at its `)`: remember the first.
    if(why AND NOT bad_line)
      set(bad_line "${lineno}")
      set(bad_text "${shown}")
      set(bad_why "${why}")
    endif()
    set(why "")
    if(found)
      break()
    endif()
  endforeach()

  if(NOT found)
    message(FATAL_ERROR
      "${build_file}: no rule named \"${rule}\" (shmring_bazel_sources "
      "called from ${CMAKE_CURRENT_LIST_FILE}). Was the Bazel target "
      "renamed? Update the CMakeLists.txt to the new name.")
  endif()

  set(abs_srcs "")
  set(abs_hdrs "")
  foreach(a srcs hdrs)
    foreach(f IN LISTS ${a})
      list(APPEND abs_${a} "${PROJECT_SOURCE_DIR}/${package}/${f}")
      file(APPEND "${SHMRING_BAZEL_MANIFEST}" "//${package}:${rule} ${a} ${package}/${f}\n")
    endforeach()
  endforeach()
  if(NOT abs_srcs AND NOT abs_hdrs)
    file(APPEND "${SHMRING_BAZEL_MANIFEST}" "//${package}:${rule} - -\n")
  endif()
  set(${srcs_var} "${abs_srcs}" PARENT_SCOPE)
  set(${hdrs_var} "${abs_hdrs}" PARENT_SCOPE)
endfunction()
