#pragma once

#include <chrono>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "sinks/sink.hpp"

// The webhook sink's policy as plain functions (no I/O): request signing for both schemes,
// outcome classification of HTTP answers and the request body. Used by WebhookSink on the event
// loop and by the unit tests; stateless and thread-safe.
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

// Retry-After: delta-seconds or an HTTP-date (IMF-fixdate, RFC 850 or asctime). A date in the
// past gives 0. nullopt when absent or unparsable.
std::optional<std::chrono::milliseconds> parse_retry_after(
    std::string_view value, std::chrono::system_clock::time_point now);

// 2xx ok; 408, 429, 5xx retry (with Retry-After); 3xx failed "redirect" (the caller follows
// redirects itself when configured); other codes failed "http <code>".
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
