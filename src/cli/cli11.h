#pragma once

// CLI11, without the static initialiser of <iostream>. With libstdc++
// before GCC 13, every file that includes <iostream> (CLI11's headers do)
// constructs std::cout and its kin and the classic locale with all of its
// facets at start-up, before main: some 40 thousand instructions and a dozen
// page faults of code and data that fasten's run of a command never uses
// (BENCHMARKS.md), paid at every start. fasten writes through its own
// functions (cli/diagnostics.h), never through std::cout, and of CLI11 uses
// nothing that does (only App::exit, AutoTimer, and the deprecated and
// retired options print to it). So <iostream>'s guard is set before CLI11
// comes in, and the streams that CLI11 names are declared here as
// <iostream> declares them; the locale is built on first use instead, by a
// string stream, if one is made.
#include <version>

#if defined(__GLIBCXX__) && _GLIBCXX_RELEASE < 13 && !defined(_GLIBCXX_IOSTREAM)
#define _GLIBCXX_IOSTREAM 1
#include <istream>
#include <ostream>
// libstdc++'s namespace macros, which clang-format does not read, as they are.
// clang-format off
namespace std _GLIBCXX_VISIBILITY(default) {
_GLIBCXX_BEGIN_NAMESPACE_VERSION
extern istream cin;
extern ostream cout;
extern ostream cerr;
extern ostream clog;
_GLIBCXX_END_NAMESPACE_VERSION
} // namespace std
// clang-format on
#endif

#include <CLI/CLI.hpp>
