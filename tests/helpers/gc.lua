-- Loaded with busted --helper before the specs of the busted_gc run (tests/CMakeLists.txt):
-- the incremental collector with a pause of 0 starts a new cycle as soon as one ends, so
-- every allocation steps a collection. A userdata collected while C still points into it,
-- a __gc or __close that runs early, or a value kept alive only by luck fails here (and,
-- in the sanitizer lane, as a use-after-free) instead of at random in a long run.
collectgarbage("incremental")
collectgarbage("setpause", 0)
-- setpause answers the previous value: 0 proves the setting took (it is deprecated in 5.4)
assert(collectgarbage("setpause", 0) == 0, "tests/helpers/gc.lua: the collector's pause did not take")
