#include "engine/dispatch/request_ledger.hpp"

namespace zonecall {

v1::Ack ack_of(const v1::TimelineEvent& first) {
  v1::Ack ack;
  ack.set_incident_id(first.incident_id());
  ack.set_seq(first.seq());
  ack.set_at_ms(first.at_ms());
  ack.set_attached(first.has_attached());
  return ack;
}

RequestLedger::Check RequestLedger::check(const std::string& staff_id, const sla::RequestKey& key,
                                          const Requester& to) {
  if (key.id == 0) {
    return {};  // no id: nothing to recognise a retry by
  }
  auto staff = staff_.find(staff_id);
  if (staff == staff_.end()) {
    return {};
  }
  auto known = staff->second.by_id.find(key.id);
  if (known == staff->second.by_id.end()) {
    return {};
  }
  // Digest 0: recorded before digests were; whether it is the same request
  // is unknown, so it is refused rather than guessed.
  if (known->second.digest == 0 || known->second.digest != key.digest) {
    return {Seen::reused, std::nullopt};
  }
  if (known->second.ack) {
    return {Seen::answered, known->second.ack};
  }
  known->second.waiting.push_back(to);
  return {Seen::waiting, std::nullopt};
}

void RequestLedger::started(const std::string& staff_id, const sla::RequestKey& key,
                            const Requester& to) {
  if (key.id != 0) {
    remember(staff_id, key.id, Remembered{key.digest, std::nullopt, {to}});
  }
}

std::vector<Requester> RequestLedger::finished(const std::string& staff_id, std::uint64_t request_id,
                                               const std::optional<v1::Ack>& ack) {
  auto& known = staff_[staff_id].by_id;
  auto it = known.find(request_id);
  if (it == known.end()) {
    return {};
  }
  std::vector<Requester> answer = std::move(it->second.waiting);
  it->second.waiting.clear();
  if (ack) {
    it->second.ack = ack;
  } else {
    known.erase(it);  // not done: a later retry is a new attempt
  }
  return answer;
}

void RequestLedger::recovered(const v1::TimelineEvent& event) {
  if (event.request_id() == 0 || event.actor_id() == sla::kEngineActor) {
    return;
  }
  auto& staff = staff_[event.actor_id()];
  if (staff.by_id.count(event.request_id()) == 0) {
    remember(event.actor_id(), event.request_id(), Remembered{event.request_digest(), ack_of(event), {}});
  }
}

void RequestLedger::remember(const std::string& staff_id, std::uint64_t request_id, Remembered entry) {
  auto& staff = staff_[staff_id];
  entry.order_no = staff.next_order_no++;
  staff.order.emplace_back(request_id, entry.order_no);
  staff.by_id.insert_or_assign(request_id, std::move(entry));
  // Forget the oldest answered requests beyond the bound; a request still
  // waiting for its commit is never forgotten (it goes to the back).
  std::size_t looked = 0;
  while (staff.by_id.size() > kRemembered && looked++ < staff.order.size()) {
    const auto [id, order_no] = staff.order.front();
    staff.order.pop_front();
    auto it = staff.by_id.find(id);
    if (it == staff.by_id.end() || it->second.order_no != order_no) {
      continue;  // a stale place: forgotten already, or queued again later
    }
    if (!it->second.ack) {
      staff.order.emplace_back(id, order_no);
      continue;
    }
    staff.by_id.erase(it);
  }
}

}  // namespace zonecall
