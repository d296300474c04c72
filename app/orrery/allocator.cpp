// The allocator's settings for every `orrery` process (the control plane above all).
//
// `orrery` links jemalloc (scripts/setup.sh installs libjemalloc-dev). The control plane's
// threads allocate small JSON nodes on one thread and free them on another all day long;
// with glibc's malloc and a few arenas a Deployment of 1,000 pods spent a fifth of its CPU
// in malloc and free, a third of that waiting for arena locks. jemalloc's per-thread caches
// took the control plane's CPU for that Deployment down by about a third.
//
// jemalloc reads this string at start-up; MALLOC_CONF in the environment overrides it.
//   narenas:4          two arenas per core of the reference machine, not four per core: with
//                      one per core, 20-odd busy threads flushing their caches queued on two
//                      arena locks (SchedulingBasic: 187 → 175 µs of CPU per pod with 4 and
//                      64 slots, medians of 6 interleaved runs);
//   tcache_*           per-thread caches smaller than the default: about 100 threads idle
//                      at once, and a cache each of the default size made an idle control
//                      plane 2 MB larger. Not much smaller, though: a pod's JSON is ~100
//                      nodes of a few size classes, and with 8 slots per class (none above
//                      4 KiB) SchedulingBasic spent ~12% more CPU per pod refilling and
//                      flushing them under the arenas' locks. 64 small slots, 4 large ones,
//                      cached up to 16 KiB: +0.7 MiB idle and +4 MiB at 1,000 simulated nodes
//                      and 10,000 pods over 32 slots and 2 arenas;
//   dirty_decay_ms     freed pages go back to the kernel after a second, not ten;
//   muzzy_decay_ms:0   and at once once they are handed back lazily.
extern "C" {
// NOLINTNEXTLINE: the name is jemalloc's.
extern const char* malloc_conf;
const char* malloc_conf =
    "narenas:4,tcache_nslots_small_max:64,tcache_nslots_large:4,tcache_max:16384,"
    "dirty_decay_ms:1000,muzzy_decay_ms:0";
}
