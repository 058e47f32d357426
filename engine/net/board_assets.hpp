#pragma once
// The live board's files (engine/board/), compiled into the binary so the
// board works with nothing fetched from anywhere else.
#include <string_view>

namespace zonecall::net {

struct BoardAsset {
  std::string_view path;  // "/" is index.html
  std::string_view content_type;
  std::string_view body;
};

// The asset served at `path` (no query string), or null.
const BoardAsset* find_board_asset(std::string_view path);

}  // namespace zonecall::net
