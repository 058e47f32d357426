#pragma once
// Memory for the incident table that asks the kernel for transparent huge
// pages. sla/ only takes a memory resource; the OS calls are here.
#include <memory_resource>

namespace zonecall {

// Blocks of 2 MiB or more are aligned to a huge page, rounded up to whole
// ones, and advised MADV_HUGEPAGE, so that a fault maps 2 MiB instead of
// 4 KiB: page faults on a year's fresh incidents were a sixth of the audit
// and a third of recovery's fold (bench/RESULTS.md). Smaller blocks come from
// the heap. Only a hint: where the kernel takes none, this is ordinary memory.
// One for the process; it holds no state, so any thread may use it.
std::pmr::memory_resource* huge_pages();

}  // namespace zonecall
