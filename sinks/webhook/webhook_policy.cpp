#include "sinks/webhook/webhook_policy.hpp"

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <algorithm>
#include <cstdint>
#include <ctime>

#include <boost/beast/core/string.hpp>

#include "core/event.hpp"

namespace sluice::sinks::webhook {

namespace {

constexpr std::string_view kAlphabet =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

std::string hmac(const EVP_MD* md, std::string_view key, std::string_view a, std::string_view b,
                 std::string_view c = {}, std::string_view d = {}, std::string_view e = {}) {
  // HMAC_CTX is deprecated in OpenSSL 3; one-shot HMAC() over the concatenation is simplest.
  std::string message;
  message.reserve(a.size() + b.size() + c.size() + d.size() + e.size());
  message.append(a).append(b).append(c).append(d).append(e);
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(md, key.data(), static_cast<int>(key.size()),
       reinterpret_cast<const unsigned char*>(message.data()), message.size(), out, &len);
  return std::string(reinterpret_cast<const char*>(out), len);
}

int hex_value(char c) {
  if (c >= '0' && c <= '9')
    return c - '0';
  if (c >= 'a' && c <= 'f')
    return c - 'a' + 10;
  if (c >= 'A' && c <= 'F')
    return c - 'A' + 10;
  return -1;
}

}  // namespace

std::string base64_encode(std::string_view bytes) {
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  std::size_t i = 0;
  const auto byte = [&](std::size_t k) { return static_cast<unsigned char>(bytes[k]); };
  for (; i + 2 < bytes.size(); i += 3) {
    const unsigned v = (byte(i) << 16) | (byte(i + 1) << 8) | byte(i + 2);
    out += kAlphabet[(v >> 18) & 63];
    out += kAlphabet[(v >> 12) & 63];
    out += kAlphabet[(v >> 6) & 63];
    out += kAlphabet[v & 63];
  }
  if (i + 1 == bytes.size()) {
    const unsigned v = byte(i) << 16;
    out += kAlphabet[(v >> 18) & 63];
    out += kAlphabet[(v >> 12) & 63];
    out += "==";
  } else if (i + 2 == bytes.size()) {
    const unsigned v = (byte(i) << 16) | (byte(i + 1) << 8);
    out += kAlphabet[(v >> 18) & 63];
    out += kAlphabet[(v >> 12) & 63];
    out += kAlphabet[(v >> 6) & 63];
    out += '=';
  }
  return out;
}

std::optional<std::string> base64_decode(std::string_view text) {
  while (!text.empty() && text.back() == '=')
    text.remove_suffix(1);
  if (text.size() % 4 == 1)
    return std::nullopt;
  std::string out;
  unsigned acc = 0;
  int bits = 0;
  for (char c : text) {
    const auto pos = kAlphabet.find(c);
    if (pos == std::string_view::npos)
      return std::nullopt;
    acc = (acc << 6) | static_cast<unsigned>(pos);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out += static_cast<char>((acc >> bits) & 0xff);
    }
  }
  return out;
}

std::string standard_key(std::string_view secret) {
  constexpr std::string_view prefix = "whsec_";
  if (secret.starts_with(prefix)) {
    if (auto key = base64_decode(secret.substr(prefix.size())))
      return *key;
  }
  return std::string(secret);
}

std::string standard_signature(std::string_view key, std::string_view id,
                               std::string_view timestamp, std::string_view body) {
  return "v1," + base64_encode(hmac(EVP_sha256(), key, id, ".", timestamp, ".", body));
}

std::string appwrite_signature(std::string_view secret, std::string_view url,
                               std::string_view body) {
  return base64_encode(hmac(EVP_sha1(), secret, raw_url_decode(url), body));
}

std::string raw_url_decode(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '%' && i + 2 < text.size()) {
      const int hi = hex_value(text[i + 1]);
      const int lo = hex_value(text[i + 2]);
      if (hi >= 0 && lo >= 0) {
        out += static_cast<char>(hi * 16 + lo);
        i += 2;
        continue;
      }
    }
    out += text[i];
  }
  return out;
}

std::string appwrite_user_agent() {
  return "Appwrite-Server v" SLUICE_VERSION " (sluice). Please report abuse at ";
}

std::optional<std::chrono::milliseconds> parse_retry_after(
    std::string_view value, std::chrono::system_clock::time_point now) {
  using std::chrono::milliseconds;
  constexpr std::int64_t limit = kMaxRetryAfter.count();
  while (!value.empty() && (value.front() == ' ' || value.front() == '\t'))
    value.remove_prefix(1);
  while (!value.empty() && (value.back() == ' ' || value.back() == '\t'))
    value.remove_suffix(1);
  if (value.empty())
    return std::nullopt;
  if (value.find_first_not_of("0123456789") == std::string_view::npos) {
    // Any number of digits: saturating, so a huge value is a long wait, never an overflow.
    std::int64_t seconds = 0;
    for (char c : value)
      seconds = std::min(limit, seconds * 10 + (c - '0'));
    return std::chrono::seconds{seconds};
  }
  const std::string text(value);
  for (const char* format :
       {"%a, %d %b %Y %H:%M:%S GMT", "%A, %d-%b-%y %H:%M:%S GMT", "%a %b %d %H:%M:%S %Y"}) {
    std::tm tm{};
    const char* end = ::strptime(text.c_str(), format, &tm);
    if (end == nullptr || *end != '\0')
      continue;
    // In whole seconds first: a date centuries ahead must not overflow the clock's duration.
    const std::int64_t at = ::timegm(&tm);
    const std::int64_t now_s =
        std::chrono::floor<std::chrono::seconds>(now.time_since_epoch()).count();
    if (at < now_s)
      return milliseconds{0};
    if (at - now_s > limit)
      return std::chrono::duration_cast<milliseconds>(kMaxRetryAfter);
    const auto delay = std::chrono::seconds{at} - now.time_since_epoch();
    if (delay <= delay.zero())
      return milliseconds{0};
    return std::chrono::ceil<milliseconds>(delay);
  }
  return std::nullopt;
}

bool is_interim(unsigned status) {
  return status >= 100 && status < 200 && status != 101;
}

bool reusable(unsigned status, bool keep_alive, bool read_to_end, std::size_t unread_bytes) {
  return status != 101 && keep_alive && read_to_end && unread_bytes == 0;
}

bool same_origin(const net::Endpoint& a, const net::Endpoint& b) {
  return a.secure == b.secure && boost::beast::iequals(a.host, b.host) && a.port == b.port;
}

std::optional<std::string> refuse_redirect(const net::Endpoint& from, const net::Endpoint& to) {
  if (from.secure && !to.secure)
    return "redirect: refused, from https to plain http (http://" + to.host_header() + ")";
  return std::nullopt;
}

void drop_for_other_origin(boost::beast::http::fields& fields,
                           std::span<const std::string_view> configured) {
  for (auto name : configured)
    fields.erase(name);
  fields.erase("webhook-signature");
  fields.erase("X-Appwrite-Webhook-Signature");
}

Result classify_status(unsigned status, std::string_view retry_after,
                       std::chrono::system_clock::time_point now) {
  if (status >= 200 && status < 300)
    return Result{};
  const std::string reason = "http " + std::to_string(status);
  if (status == 408 || status == 429 || (status >= 500 && status < 600))
    return Result{Outcome::retry, reason, parse_retry_after(retry_after, now)};
  if (status >= 300 && status < 400)
    return Result{Outcome::failed, "redirect: " + reason, {}};
  return Result{Outcome::failed, reason, {}};
}

std::string_view status_class(unsigned status) {
  switch (status / 100) {
    case 1:
      return "1xx";
    case 2:
      return "2xx";
    case 3:
      return "3xx";
    case 4:
      return "4xx";
    case 5:
      return "5xx";
    default:
      return "other";
  }
}

std::string make_body(std::span<const std::string_view> records, bool as_array) {
  if (!as_array)
    return records.empty() ? std::string{} : std::string(records.front());
  std::size_t size = 2;
  for (auto r : records)
    size += r.size() + 1;
  std::string body;
  body.reserve(size);
  body += '[';
  for (std::size_t i = 0; i < records.size(); ++i) {
    if (i > 0)
      body += ',';
    body.append(records[i]);
  }
  body += ']';
  return body;
}

std::string batch_id(std::span<const std::string_view> event_ids) {
  if (event_ids.size() == 1)
    return std::string(event_ids.front());
  std::string joined;
  for (auto id : event_ids)
    joined.append(id).push_back(',');
  return "batch_" + make_event_id(joined);
}

}  // namespace sluice::sinks::webhook
