#pragma once

#include <chrono>
#include <string>

#include "core/event.hpp"
#include "daemon/recovery/backfill_pager.hpp"
#include "daemon/recovery/backfill_plan.hpp"
#include "daemon/upstream/decoder.hpp"
#include "emulator/fanout/fanout.hpp"

// A listed row, document or file turned into the event Realtime would have sent for its latest
// change: events and channels by Appwrite's fan-out rules for the server's version, `create`
// when it was created inside the gap (else `update`), `timestamp` its `$updatedAt`, and one
// extra member in `data`, `"recovered": true`, so consumers can tell it from a live event.
// The frame goes through the realtime decoder, so a recovered event is checked like a received
// one and gets the same id the live event would have had. Owned by the backfill runner, used
// on its executor only (the decoder reuses its buffers).
namespace sluice::recovery {

class Synthesizer {
 public:
  Synthesizer(emulator::Profile profile, std::string project);

  struct Result {
    EventPtr event;          // null when skipped or refused
    bool duplicate = false;  // the checkpoint records it as delivered
    std::string error;       // the fan-out or the decoder refused it
  };
  Result make(const Target& target, const ListedRow& row);

 private:
  emulator::Profile profile_;
  std::string project_;
  upstream::FrameDecoder decoder_;
};

}  // namespace sluice::recovery
