#include "engine/dispatch/sign_in.hpp"

#include <memory>

#include "engine/log.hpp"

namespace zonecall {

void SignIn::hello(const Requester& to, const v1::Hello& hello, sla::Millis now) {
  SessionRegistry::Connected& c = *sessions_.find(to.session_id);
  if (c.who) {
    sessions_.reply_error(to, v1::BAD_REQUEST, "already signed in");
    return;
  }
  auto who = roster_.authenticate(hello.token());
  if (!who) {
    refused(to, c);
    return;
  }
  const std::string staff_id = who->staff_id;
  sessions_.sign_in(to.session_id, std::move(*who), roster_.token_sha256_of(staff_id));
  const sla::Principal& signed_in = *c.who;
  log::info("auth.welcome", {{"session", std::to_string(to.session_id)},
                             {"staff", signed_in.staff_id},
                             {"role", v1::Role_Name(signed_in.role)}});
  v1::ServerMessage m;
  auto* w = m.mutable_welcome();
  w->set_staff_id(signed_in.staff_id);
  w->set_name(signed_in.name);
  w->set_role(signed_in.role);
  w->set_zone_id(signed_in.zone_id);
  w->set_department_id(signed_in.department_id);
  w->set_server_time_ms(now);
  w->set_on_duty(book_.duty().on_duty(signed_in.staff_id));
  w->set_last_seq(book_.next_seq() - 1);
  w->set_time_zone(roster_.time_zone());
  w->set_standby(role_.standby);
  w->set_leader_url(role_.leader_url);
  sessions_.reply(to, std::move(m));
}

void SignIn::refused(const Requester& to, SessionRegistry::Connected& c) {
  const int failures = ++c.failed_hellos;
  log::warn("auth.refused", {{"session", std::to_string(to.session_id)},
                             {"failures", std::to_string(failures)}});
  auto delay = refusal_delays_.insert(refusal_delays_.end(), nullptr);
  *delay = time_.make_timer(io_, [this, delay, to, failures] {
    sessions_.reply_error(to, v1::UNAUTHENTICATED, "unknown token");
    if (failures >= limits_.max_failures) {
      if (auto* c = sessions_.find(to.session_id)) {
        if (auto session = c->session.lock()) {
          session->close_for_policy("too many failed sign-ins");
        }
      }
    }
    refusal_delays_.erase(delay);  // this timer: nothing of it is used after
  });
  (*delay)->arm_after(limits_.failure_delay * failures);
}

}  // namespace zonecall
