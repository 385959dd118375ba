#pragma once

#include <string_view>
#include <vector>

// Small string helpers shared by the parts that take Appwrite's dotted channel names and
// sluice's slash-separated resource keys apart.
namespace sluice {

// The pieces of `text` between occurrences of `separator`, in order, as views into `text` (the
// caller keeps `text` alive while it uses them). Every separator ends a piece, so empty pieces
// are kept: "" gives {""}, "a..b" gives {"a", "", "b"}, ".a." gives {"", "a", ""}. Callers that
// reject malformed names check for empty pieces themselves.
std::vector<std::string_view> split(std::string_view text, char separator);

}  // namespace sluice
