#pragma once
// Staff-supplied text (notes, locations, reasons) reaches terminals and
// files: every text output passes it through printable(), so no ESC
// sequence can rewrite the reader's screen and no line break can forge a
// line of output.
#include <string>
#include <string_view>

namespace zonecall {

// The text with control characters written as escapes: \n \r \t \\ and
// \xNN for the other C0 controls and DEL, \u{NNNN} for C1 controls and the
// bidirectional overrides (which reorder what a terminal shows), \xNN for a
// byte that is not UTF-8. Printable UTF-8, Chinese included, is unchanged.
std::string printable(std::string_view text);

}  // namespace zonecall
