// A first-in first-out queue kept in one vector: nothing is allocated while it has never
// held anything (std::deque allocates about 600 bytes up front, and every traced
// connection has several queues), push_back, pop_back and pop_front are O(1) amortised.
//
// Unlike std::deque, push_back and pop_front may invalidate references and iterators to
// other elements: take them again after either.
#pragma once

#include <cstddef>
#include <initializer_list>
#include <utility>
#include <vector>

namespace kspan {

template <typename T>
class Fifo {
 public:
  Fifo() = default;
  Fifo(std::initializer_list<T> items) : items_(items) {}

  bool empty() const { return head_ == items_.size(); }
  size_t size() const { return items_.size() - head_; }

  T& front() { return items_[head_]; }
  const T& front() const { return items_[head_]; }
  T& back() { return items_.back(); }
  const T& back() const { return items_.back(); }
  T& operator[](size_t i) { return items_[head_ + i]; }
  const T& operator[](size_t i) const { return items_[head_ + i]; }

  auto begin() { return items_.begin() + static_cast<std::ptrdiff_t>(head_); }
  auto end() { return items_.end(); }
  auto begin() const { return items_.begin() + static_cast<std::ptrdiff_t>(head_); }
  auto end() const { return items_.end(); }

  void push_back(T v) { items_.push_back(std::move(v)); }
  template <typename... Args>
  T& emplace_back(Args&&... args) {
    return items_.emplace_back(std::forward<Args>(args)...);
  }

  // Removes the newest element.
  void pop_back() {
    items_.pop_back();
    if (head_ == items_.size()) clear();
  }

  void pop_front() {
    ++head_;
    if (head_ == items_.size()) {
      clear();
    } else if (head_ >= kCompactMin && head_ * 2 >= items_.size()) {
      // Moves the live half down: each element moves O(1) times on average.
      items_.erase(items_.begin(), begin());
      head_ = 0;
    }
  }

  // Empties it; a large buffer is given back (a burst should not pin its peak).
  void clear() {
    items_.clear();
    head_ = 0;
    if (items_.capacity() * sizeof(T) > kKeepBytes) std::vector<T>().swap(items_);
  }

 private:
  static constexpr size_t kCompactMin = 16;
  static constexpr size_t kKeepBytes = 4096;

  std::vector<T> items_;
  size_t head_ = 0;
};

}  // namespace kspan
