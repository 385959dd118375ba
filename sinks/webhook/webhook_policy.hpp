#pragma once

#include <chrono>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include <boost/beast/http/fields.hpp>

#include "net/endpoint.hpp"
#include "sinks/sink.hpp"

// The webhook sink's policy as plain functions (no I/O): request signing for both schemes,
// outcome classification of HTTP answers, which answers are interim, when a connection may be
// reused, which redirects are followed and what crosses to another origin, and the request body.
// Used by WebhookSink on the event loop and by the unit tests; stateless and thread-safe.
namespace sluice::sinks::webhook {

std::string base64_encode(std::string_view bytes);
// Standard base64 (padding optional); nullopt on any other character.
std::optional<std::string> base64_decode(std::string_view text);

// The HMAC key of a Standard Webhooks secret: `whsec_<base64>` is decoded (the spec's form);
// anything else, including a whsec_ value that is not valid base64, is used as raw bytes.
std::string standard_key(std::string_view secret);

// `v1,<base64 HMAC-SHA256(key, id "." timestamp "." body)>` (Standard Webhooks, symmetric).
std::string standard_signature(std::string_view key, std::string_view id,
                               std::string_view timestamp, std::string_view body);

// What Appwrite's webhooks worker puts in X-Appwrite-Webhook-Signature:
// base64(HMAC-SHA1(secret, rawurldecode(url) . body)).
std::string appwrite_signature(std::string_view secret, std::string_view url,
                               std::string_view body);

// PHP's rawurldecode(): %XX sequences decoded, '+' left alone, malformed escapes kept as written.
std::string raw_url_decode(std::string_view text);

// The User-Agent Appwrite's worker sends (APP_USERAGENT: "Appwrite-Server v%s. Please report
// abuse at %s"), with sluice's version standing in for Appwrite's and no abuse address.
std::string appwrite_user_agent();

// The longest delay parse_retry_after() reports. Longer requests (no server means them, and
// the clocks would overflow adding them) are reported as this, which is still "wait".
inline constexpr std::chrono::seconds kMaxRetryAfter = std::chrono::hours{24 * 365 * 100};

// Retry-After (RFC 9110 §10.2.3): delay-seconds or an HTTP-date (IMF-fixdate, RFC 850 or
// asctime), returned in full however long, up to kMaxRetryAfter. A date in the past gives 0.
// nullopt when absent or unparsable (signs, fractions, units, unknown date forms).
std::optional<std::chrono::milliseconds> parse_retry_after(
    std::string_view value, std::chrono::system_clock::time_point now);

// An interim answer (RFC 9110 §15.2): 1xx other than 101. A client reads and discards any
// number of them before the final answer to its request. 101 Switching Protocols answers only
// a request that asked to upgrade, which the sink never sends, so it is a final (failed) answer.
bool is_interim(unsigned status);

// Whether a connection may serve another request after the final answer `status`: the server
// keeps it open, did not switch it to another protocol (101), the answer was read to its end,
// and no byte is left over. Left-over bytes (an unsolicited second answer) would otherwise be
// read as the next request's answer.
bool reusable(unsigned status, bool keep_alive, bool read_to_end, std::size_t unread_bytes);

// Same origin: scheme, host (case-insensitive) and port.
bool same_origin(const net::Endpoint& a, const net::Endpoint& b);

// Why a redirect from `from` to `to` is not followed, or nullopt when it may be: https to plain
// http would carry the body, the configured headers and the signature in clear text.
std::optional<std::string> refuse_redirect(const net::Endpoint& from, const net::Endpoint& to);

// Removes what must not reach another origin than the configured URL's: the configured headers
// (`configured`: their names; they may hold credentials) and the signatures (a Standard
// Webhooks signature is valid for the same body anywhere, so another origin could replay it).
void drop_for_other_origin(boost::beast::http::fields& fields,
                           std::span<const std::string_view> configured);

// 2xx ok; 408, 429, 5xx retry (with Retry-After); 3xx failed "redirect" (the caller follows
// redirects itself when configured); other codes failed "http <code>". Interim answers never
// get here: the sink skips them.
Result classify_status(unsigned status, std::string_view retry_after,
                       std::chrono::system_clock::time_point now);

// The class label of a status: "2xx" … "5xx", "other".
std::string_view status_class(unsigned status);

// The request body for one request: the record itself, or a JSON array of records when
// `as_array` (batching). Records are the raw `data` bytes, so the array is valid JSON.
std::string make_body(std::span<const std::string_view> records, bool as_array);

// A deterministic webhook-id for a batch: derived from its events' ids in order, so a retried
// batch carries the same id (receivers deduplicate on it).
std::string batch_id(std::span<const std::string_view> event_ids);

}  // namespace sluice::sinks::webhook
