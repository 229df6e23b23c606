/* A Lua state for fuzz targets that run untrusted Lua (config and revision files): the
 * project's embedded modules preloaded as in the executable, nothing that reaches outside
 * the process (os.execute, os.remove, io.open, lfs, C modules ...), a memory cap and an
 * instruction budget, so an input that loops or allocates forever ends in a Lua error
 * instead of a libFuzzer timeout. One fresh state per input: nothing carries over. */
#ifndef LM_FUZZ_LUA_SANDBOX_H
#define LM_FUZZ_LUA_SANDBOX_H

#include <lua.h>

lua_State *lm_fuzz_lua_new(void);
void lm_fuzz_lua_close(lua_State *L);
/* A private temporary directory (made once per process); "" when it cannot be made. */
const char *lm_fuzz_tmpdir(void);
/* Writes len bytes to path; 0 or -1. */
int lm_fuzz_write(const char *path, const void *data, size_t len);

#endif
