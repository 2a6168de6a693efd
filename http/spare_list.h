// SpareList: a bounded LIFO of spare objects, kept per thread, for the
// memory a request in progress needs (the Parser, an output block, a chunk
// list).
//
// Why: a keep-alive connection gives that memory back as soon as it is idle
// (its answer sent, nothing buffered), as nginx frees a request's pool and
// header buffer at keep-alive. Freed to malloc, those pieces would sit between
// long-lived connection objects in the heap, so the RSS would stay at the
// high-water mark of every connection ever served; kept here, the next
// request on any connection of this thread takes them back. Their number
// follows the requests in progress on the thread, not the connections it
// holds, and getting one costs a pop instead of a malloc.
//
// Threading: one list per thread (`thread_local` at the user). An object may
// be given back on another thread than the one it was taken on (it moves to
// that thread's list). Nothing here blocks or throws, except std::bad_alloc
// when the list's own storage grows (at most `max` entries).
#pragma once

#include <cstddef>
#include <utility>
#include <vector>

namespace kingx::http {

template <typename T>
class SpareList {
 public:
  explicit SpareList(size_t max) : max_(max) {}

  // The most recently given object, or a default-constructed T when none.
  T Take() {
    if (items_.empty()) return T();
    T t = std::move(items_.back());
    items_.pop_back();
    return t;
  }
  // Keeps `t` for a later Take; when `max` objects are kept already, `t` is
  // destroyed instead (its memory goes back to malloc).
  void Give(T t) {
    if (items_.size() < max_) items_.push_back(std::move(t));
  }
  size_t size() const { return items_.size(); }
  // How many kept objects satisfy `pred`.
  template <typename Pred>
  size_t Count(Pred pred) const {
    size_t n = 0;
    for (const T& t : items_) n += pred(t) ? 1 : 0;
    return n;
  }

 private:
  size_t max_;
  std::vector<T> items_;
};

}  // namespace kingx::http
