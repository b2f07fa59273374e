# Run by `cmake --install` (install(SCRIPT)): writes the Lmod and Tcl modulefiles with the prefix
# being installed to (so `cmake --install build --prefix /opt/x` gets /opt/x in them).
#   <prefix>/modulefiles/dptrain/<version>.lua      (module use <prefix>/modulefiles)
#   <prefix>/modulefiles-tcl/dptrain/<version>      (for Environment Modules)
set(DPTRAIN_PREFIX "${CMAKE_INSTALL_PREFIX}")
set(DPTRAIN_LUA_DEPENDS "")
set(DPTRAIN_TCL_DEPENDS "")
foreach(dep IN LISTS DPTRAIN_MODULE_DEPENDS)
  string(APPEND DPTRAIN_LUA_DEPENDS "depends_on(\"${dep}\")\n")
  string(APPEND DPTRAIN_TCL_DEPENDS "depends-on ${dep}\n")
endforeach()
set(root "$ENV{DESTDIR}${CMAKE_INSTALL_PREFIX}")
configure_file("${DPTRAIN_SOURCE_DIR}/modules/dptrain.lua.in"
               "${root}/modulefiles/dptrain/${DPTRAIN_VERSION}.lua" @ONLY)
configure_file("${DPTRAIN_SOURCE_DIR}/modules/dptrain.tcl.in"
               "${root}/modulefiles-tcl/dptrain/${DPTRAIN_VERSION}" @ONLY)
message(STATUS "Installing: ${root}/modulefiles/dptrain/${DPTRAIN_VERSION}.lua")
message(STATUS "Installing: ${root}/modulefiles-tcl/dptrain/${DPTRAIN_VERSION}")
