#include "engine/huge_pages.hpp"

#include <algorithm>
#include <cstdlib>
#include <new>

#if defined(__linux__)
#include <sys/mman.h>
#endif

namespace zonecall {

namespace {
constexpr std::size_t kHugePage = std::size_t{2} << 20;

std::size_t whole_huge_pages(std::size_t bytes) { return (bytes + kHugePage - 1) / kHugePage * kHugePage; }

class HugePages final : public std::pmr::memory_resource {
  void* do_allocate(std::size_t bytes, std::size_t alignment) override {
    if (bytes < kHugePage) {
      return std::pmr::new_delete_resource()->allocate(bytes, alignment);
    }
    void* p = std::aligned_alloc(std::max(kHugePage, alignment), whole_huge_pages(bytes));
    if (p == nullptr) {
      throw std::bad_alloc();
    }
#if defined(__linux__) && defined(MADV_HUGEPAGE)
    madvise(p, whole_huge_pages(bytes), MADV_HUGEPAGE);
#endif
    return p;
  }

  void do_deallocate(void* p, std::size_t bytes, std::size_t alignment) override {
    if (bytes < kHugePage) {
      std::pmr::new_delete_resource()->deallocate(p, bytes, alignment);
    } else {
      std::free(p);
    }
  }

  bool do_is_equal(const std::pmr::memory_resource& other) const noexcept override { return this == &other; }
};
}  // namespace

std::pmr::memory_resource* huge_pages() {
  static auto* const instance = new HugePages();  // never destroyed: tables may outlive statics
  return instance;
}

}  // namespace zonecall
