// rustls (userspace/tls/rustls_binary.h): its plaintext functions recognised by their
// mangled names, and the calling convention told from real code. The code below is
// <rustls::conn::Reader as std::io::Read>::read and <Writer as Write>::write of rustls
// 0.20.8 (Debian 12's librust-rustls-dev) in tests/apps/rustls, built by Debian's rustc
// 1.63 (io::Result returned through memory) and by rustc 1.95 (in RAX:RDX). The
// integration test tls_rustls_test.cc probes a real binary.
#include <gtest/gtest.h>

#include <string>

#include "tls/rustls_binary.h"

namespace kspan::tls {
namespace {

std::string Bytes(const char* s, size_t n) {
  return std::string(s, n);
}
#define CODE(lit) Bytes(lit, sizeof(lit) - 1)

TEST(Rustls, RecognisesReaderAndWriterByMangledName) {
  const std::string read163 =
      "_ZN54_$LT$rustls..conn..Reader$u20$as$u20$std..io..Read$GT$4read17h6308c7c8c4dc589bE";
  const std::string write163 =
      "_ZN55_$LT$rustls..conn..Writer$u20$as$u20$std..io..Write$GT$5write17h933db708f4975cbfE";
  // rustls 0.23 nests the module: rustls::conn::connection::Reader.
  const std::string read023 =
      "_ZN68_$LT$rustls..conn..connection..Reader$u20$as$u20$std..io..Read$GT$4read17h0123456789abcdefE";
  EXPECT_TRUE(IsRustlsReaderRead(read163));
  EXPECT_TRUE(IsRustlsReaderRead(read023));
  EXPECT_FALSE(IsRustlsReaderRead(write163));
  EXPECT_TRUE(IsRustlsWriterWrite(write163));
  EXPECT_FALSE(IsRustlsWriterWrite(read163));
  // Other Read impls (BufReader over a rustls Stream) and other crates are not it.
  EXPECT_FALSE(
      IsRustlsReaderRead("_ZN82_$LT$std..io..buffered..bufreader..BufReader$LT$R$GT$$u20$as$u20$std..io.."
                         "Read$GT$4read17he914accebdb31e12E"));
  EXPECT_FALSE(IsRustlsReaderRead("_ZN6rustls4conn6Reader4peek17h0000000000000000E"));
  // v0 mangling (-Csymbol-mangling-version=v0).
  EXPECT_TRUE(IsRustlsReaderRead(
      "_RNvXs2_NtCsbGCjeC0nr2h_6rustls4connNtB5_6ReaderNtNtCsjrHSEGnQ3l9_3std2io4Read4read"));
  EXPECT_TRUE(IsRustlsWriterWrite(
      "_RNvXs5_NtCsbGCjeC0nr2h_6rustls4connNtB5_6WriterNtNtCsjrHSEGnQ3l9_3std2io5Write5write"));
  EXPECT_FALSE(IsRustlsWriterWrite(
      "_RNvXs2_NtCsbGCjeC0nr2h_6rustls4connNtB5_6ReaderNtNtCsjrHSEGnQ3l9_3std2io4Read4read"));
}

TEST(Rustls, ResultThroughMemoryWithRustc163) {
  // Reader::read: RDI saved to the stack, reloaded, returned in RAX.
  const std::string read = CODE(
      "\x55\x41\x57\x41\x56\x41\x55\x41\x54\x53\x48\x83\xec\x18\x48\x85\xc9\x0f\x84\xb4\x00\x00\x00\x49\x89"
      "\xcd\x49\x89\xd4\x48\x89\x7c"
      "\x24\x10\x48\x89\x74\x24\x08\x48\x8b\x1e\x45\x31\xf6\x4c\x8b\x3d\x64\x22\x11\x00\xeb\x23\x66\x2e\x0f"
      "\x1f\x84\x00\x00\x00\x00\x00"
      "\x48\x89\xea\x41\xff\xd7\x48\x89\xdf\x48\x89\xee\xe8\x1f\x02\x01\x00\x49\x01\xee\x4d\x39\xee\x73\x5d"
      "\x48\x8b\x03\x48\x8b\x53\x08"
      "\x48\x29\xc2\x74\x51\x48\x8b\x4b\x18\x48\x83\xc1\xff\x48\x85\xd1\x0f\x84\xad\x00\x00\x00\x48\x8b\x53"
      "\x10\x48\x85\xd2\x0f\x84\xa0"
      "\x00\x00\x00\x48\x21\xc1\x48\x8d\x04\x49\x48\x8b\x34\xc2\x48\x8b\x6c\xc2\x10\x4b\x8d\x3c\x34\x4c\x89"
      "\xe8\x4c\x29\xf0\x48\x39\xc5"
      "\x48\x0f\x43\xe8\x48\x83\xfd\x01\x75\x96\x48\x85\xc0\x74\x61\x0f\xb6\x06\x88\x07\xeb\x90\x4d\x85\xf6"
      "\x48\x8b\x7c\x24\x10\x75\x0e"
      "\x48\x8b\x44\x24\x08\x80\x78\x08\x00\x74\x1e\x45\x31\xf6\x4c\x89\x77\x08\x31\xc0\x48\x89\x07\x48\x89"
      "\xf8\x48\x83\xc4\x18\x5b\x41"
      "\x5c\x41\x5d\x41\x5e\x41\x5f\x5d\xc3\x80\x78\x09\x00\x74\x0c\x48\xb8\x03\x00\x00\x00\x25\x00\x00\x00"
      "\xeb\x0a\x48\xb8\x03\x00\x00"
      "\x00\x0d\x00\x00\x00\x48\x89\x47\x08\xb8\x01\x00\x00\x00\xeb\xc4\x48\x8d\x15\x89\xae\x10\x00\x31\xff"
      "\x31\xf6\xff\x15\x17\x1c\x11"
      "\x00\x0f\x0b\x48\x8d\x3d\xe6\xe1\x0a\x00\x48\x8d\x15\x4f\xb0\x10\x00\xbe\x14\x00\x00\x00\xff\x15\x7c"
      "\x20\x11\x00\x0f\x0b\x66\x90");
  EXPECT_EQ(RustReturnOf(read, 0x35ca0), RustReturn::kMemory);
  // Writer::write: push %rbx; mov %rdi,%rbx; ...; call *0x18(%r8); mov %rbx,%rax; pop %rbx; ret
  const std::string write =
      CODE("\x53\x48\x89\xfb\x48\x8b\x06\x4c\x8b\x46\x08\x48\x89\xc6\x41\xff\x50\x18\x48\x89\xd8\x5b\xc3");
  EXPECT_EQ(RustReturnOf(write, 0x35df0), RustReturn::kMemory);
}

TEST(Rustls, ResultInRegistersWithRustc195) {
  const std::string read = CODE(
      "\x55\x41\x57\x41\x56\x41\x55\x41\x54\x53\x50\x49\x89\xd6\x31\xed\x48\x85\xd2\x0f\x84\x9b\x00\x00\x00"
      "\x4c\x8b\x27\x49\x83\x7c\x24"
      "\x28\x00\x0f\x84\x8c\x00\x00\x00\x49\x89\xf7\x48\x89\x3c\x24\x31\xed\x48\x8b\x1d\xe0\x38\x09\x00\x0f"
      "\x1f\x84\x00\x00\x00\x00\x00"
      "\x49\x8b\x44\x24\x20\x49\x8b\x4c\x24\x10\x48\x39\xc8\xba\x00\x00\x00\x00\x48\x0f\x43\xd1\x49\x8b\x4c"
      "\x24\x18\x48\x29\xd0\x48\x8d"
      "\x04\x40\x48\x8b\x74\xc1\x08\x48\x8b\x44\xc1\x10\x4d\x89\xf5\x49\x29\xed\x49\x8d\x3c\x2f\x4c\x39\xe8"
      "\x4c\x0f\x42\xe8\x49\x83\xfd"
      "\x01\x75\x0d\x0f\xb6\x06\x88\x07\xeb\x0b\x66\x0f\x1f\x44\x00\x00\x4c\x89\xea\xff\xd3\x4c\x89\xe7\x4c"
      "\x89\xee\xe8\xd0\x84\xfc\xff"
      "\x4c\x01\xed\x4c\x39\xf5\x73\x08\x49\x83\x7c\x24\x28\x00\x75\x90\x48\x8b\x3c\x24\x4d\x85\xf6\x0f\x94"
      "\xc0\x48\x85\xed\x0f\x95\xc1"
      "\x08\xc1\x0a\x4f\x08\x80\x7f\x09\x00\x48\xb8\x03\x00\x00\x00\x25\x00\x00\x00\x48\xba\x03\x00\x00\x00"
      "\x0d\x00\x00\x00\x48\x0f\x45"
      "\xd0\xf6\xc1\x01\x48\x0f\x45\xd5\xf6\xd1\x0f\xb6\xc1\x83\xe0\x01\x48\x83\xc4\x08\x5b\x41\x5c\x41\x5d"
      "\x41\x5e\x41\x5f\x5d\xc3");
  EXPECT_EQ(RustReturnOf(read, 0xb4c30), RustReturn::kRegisters);
  // Writer::write is a tail call there: no RET to tell from.
  const std::string write = CODE("\x48\x8b\x07\x48\x8b\x4f\x08\x48\x8b\x49\x18\x48\x89\xc7\xff\xe1");
  EXPECT_EQ(RustReturnOf(write, 0xb4d30), RustReturn::kUnknown);
}

TEST(Rustls, TrivialReturns) {
  // mov %rdi,%rax; ret: the sret shape; xor %eax,%eax; ret: a value in RAX.
  EXPECT_EQ(RustReturnOf(CODE("\x48\x89\xf8\xc3"), 0x1000), RustReturn::kMemory);
  EXPECT_EQ(RustReturnOf(CODE("\x31\xc0\xc3"), 0x1000), RustReturn::kRegisters);
  // Saved by push, clobbered by a call, restored by pop into RAX.
  EXPECT_EQ(RustReturnOf(CODE("\x57\xe8\x00\x00\x00\x00\x58\xc3"), 0x1000), RustReturn::kMemory);
  EXPECT_EQ(RustReturnOf("", 0x1000), RustReturn::kUnknown);
}

}  // namespace
}  // namespace kspan::tls
