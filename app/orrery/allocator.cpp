// The allocator's settings for every `orrery` process (the control plane above all).
//
// `orrery` links jemalloc (scripts/setup.sh installs libjemalloc-dev). The control plane's
// threads allocate small JSON nodes on one thread and free them on another all day long;
// with glibc's malloc and a few arenas a Deployment of 1,000 pods spent a fifth of its CPU
// in malloc and free, a third of that waiting for arena locks. jemalloc's per-thread caches
// took the control plane's CPU for that Deployment down by about a third.
//
// jemalloc reads this string at start-up; MALLOC_CONF in the environment overrides it.
//   narenas:2          one arena per core of the reference machine, not four per core;
//   tcache_*           per-thread caches smaller than the default: about 100 threads idle
//                      at once, and a cache each of the default size made an idle control
//                      plane 2 MB larger. Not much smaller, though: with 8 slots per size
//                      class (and none above 4 KiB) SchedulingBasic spent ~12% more CPU per
//                      pod refilling and flushing them under the arenas' locks; 32 slots and
//                      caching up to 16 KiB cost an idle control plane ~0.9 MiB;
//   dirty_decay_ms     freed pages go back to the kernel after a second, not ten;
//   muzzy_decay_ms:0   and at once once they are handed back lazily.
extern "C" {
// NOLINTNEXTLINE: the name is jemalloc's.
extern const char* malloc_conf;
const char* malloc_conf =
    "narenas:2,tcache_nslots_small_max:32,tcache_nslots_large:4,tcache_max:16384,"
    "dirty_decay_ms:1000,muzzy_decay_ms:0";
}
