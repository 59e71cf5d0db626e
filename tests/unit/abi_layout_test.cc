// Pins the layout of every struct shared with the BPF programs: a change here is a
// change of the kernel/user ABI and must be deliberate.
#include <gtest/gtest.h>

#include <cstddef>

#include "kspan/bpf/carrier.h"
#include "kspan/bpf/events.h"
#include "kspan/bpf/maps.h"

namespace {

TEST(AbiLayout, EventHeader) {
  EXPECT_EQ(sizeof(kspan_event_header), 24u);
  EXPECT_EQ(offsetof(kspan_event_header, type), 0u);
  EXPECT_EQ(offsetof(kspan_event_header, tgid), 4u);
  EXPECT_EQ(offsetof(kspan_event_header, tid), 8u);
  EXPECT_EQ(offsetof(kspan_event_header, turn), 12u);
  EXPECT_EQ(offsetof(kspan_event_header, ts_ns), 16u);
}

TEST(AbiLayout, ConnId) {
  EXPECT_EQ(sizeof(kspan_conn_id), 16u);
  EXPECT_EQ(offsetof(kspan_conn_id, fd), 4u);
  EXPECT_EQ(offsetof(kspan_conn_id, generation), 8u);
}

TEST(AbiLayout, DataEvent) {
  EXPECT_EQ(offsetof(kspan_data_event, conn), 24u);
  EXPECT_EQ(offsetof(kspan_data_event, enter_ns), 40u);
  EXPECT_EQ(offsetof(kspan_data_event, position), 48u);
  EXPECT_EQ(offsetof(kspan_data_event, total_len), 56u);
  EXPECT_EQ(offsetof(kspan_data_event, captured_len), 60u);
  EXPECT_EQ(offsetof(kspan_data_event, direction), 64u);
  EXPECT_EQ(offsetof(kspan_data_event, syscall), 65u);
  EXPECT_EQ(offsetof(kspan_data_event, role), 66u);
  EXPECT_EQ(offsetof(kspan_data_event, flags), 67u);
  EXPECT_EQ(offsetof(kspan_data_event, data), 72u);
  EXPECT_EQ(sizeof(kspan_data_event), 72u + KSPAN_MAX_CAPTURE);
}

TEST(AbiLayout, ConnEvent) {
  EXPECT_EQ(offsetof(kspan_conn_event, family), 40u);
  EXPECT_EQ(offsetof(kspan_conn_event, local_port), 42u);
  EXPECT_EQ(offsetof(kspan_conn_event, remote_port), 44u);
  EXPECT_EQ(offsetof(kspan_conn_event, role), 46u);
  EXPECT_EQ(offsetof(kspan_conn_event, flags), 47u);
  EXPECT_EQ(offsetof(kspan_conn_event, syscall), 48u);
  EXPECT_EQ(offsetof(kspan_conn_event, kind), 49u);
  EXPECT_EQ(offsetof(kspan_conn_event, listen_queue), 50u);
  EXPECT_EQ(offsetof(kspan_conn_event, listen_queue_max), 52u);
  EXPECT_EQ(offsetof(kspan_conn_event, local_addr), 56u);
  EXPECT_EQ(offsetof(kspan_conn_event, remote_addr), 72u);
  EXPECT_EQ(sizeof(kspan_conn_event), 88u);
}

TEST(AbiLayout, CloseExecExit) {
  EXPECT_EQ(offsetof(kspan_close_event, bytes_sent), 40u);
  EXPECT_EQ(offsetof(kspan_close_event, bytes_received), 48u);
  EXPECT_EQ(sizeof(kspan_close_event), 56u);
  EXPECT_EQ(offsetof(kspan_exec_event, ppid), 24u);
  EXPECT_EQ(offsetof(kspan_exec_event, args_len), 28u);
  EXPECT_EQ(offsetof(kspan_exec_event, comm), 32u);
  EXPECT_EQ(offsetof(kspan_exec_event, filename), 48u);
  EXPECT_EQ(offsetof(kspan_exec_event, args), 48u + KSPAN_PATH_LEN);
  EXPECT_EQ(offsetof(kspan_exec_event, exe_name), 48u + KSPAN_PATH_LEN + KSPAN_ARGS_LEN);
  EXPECT_EQ(offsetof(kspan_exec_event, parent_tid), 48u + KSPAN_PATH_LEN + KSPAN_ARGS_LEN + KSPAN_NAME_LEN);
  EXPECT_EQ(offsetof(kspan_exec_event, netns), 52u + KSPAN_PATH_LEN + KSPAN_ARGS_LEN + KSPAN_NAME_LEN);
  EXPECT_EQ(sizeof(kspan_cgroup_path), 2u + KSPAN_CGROUP_PARTS * KSPAN_CGROUP_PART_LEN);
  EXPECT_EQ(offsetof(kspan_cgroup_path, part), 2u);
  EXPECT_EQ(offsetof(kspan_exec_event, cgroup_v2), 56u + KSPAN_PATH_LEN + KSPAN_ARGS_LEN + KSPAN_NAME_LEN);
  EXPECT_EQ(offsetof(kspan_exec_event, cgroup_memory),
            56u + KSPAN_PATH_LEN + KSPAN_ARGS_LEN + KSPAN_NAME_LEN + sizeof(kspan_cgroup_path));
  // 2,108 bytes of fields, padded to the header's 8-byte alignment.
  EXPECT_EQ(sizeof(kspan_exec_event), 2112u);
  EXPECT_EQ(offsetof(kspan_exit_event, exit_code), 24u);
  EXPECT_EQ(sizeof(kspan_exit_event), 32u);
  EXPECT_EQ(offsetof(kspan_tls_bind_event, conn), 24u);
  EXPECT_EQ(offsetof(kspan_tls_bind_event, ssl), 40u);
  EXPECT_EQ(offsetof(kspan_tls_bind_event, position), 48u);
  EXPECT_EQ(offsetof(kspan_tls_bind_event, bytes), 56u);
  EXPECT_EQ(sizeof(kspan_tls_bind_event), 64u);
}

// Enum values are part of the ABI: renumbering one breaks old kernels or daemons.
TEST(AbiLayout, FileWriteEvent) {
  EXPECT_EQ(KSPAN_EV_FILE_WRITE, 7);
  EXPECT_EQ(offsetof(kspan_file_write_event, fd), 24u);
  EXPECT_EQ(offsetof(kspan_file_write_event, writes), 28u);
  EXPECT_EQ(offsetof(kspan_file_write_event, bytes), 32u);
  EXPECT_EQ(offsetof(kspan_file_write_event, first_ns), 40u);
  EXPECT_EQ(offsetof(kspan_file_write_event, last_ns), 48u);
  EXPECT_EQ(offsetof(kspan_file_write_event, path_len), 56u);
  EXPECT_EQ(offsetof(kspan_file_write_event, path), 64u);
  EXPECT_EQ(sizeof(kspan_file_write_event), 64u + KSPAN_PATH_LEN);
  EXPECT_EQ(offsetof(kspan_listen_event, fd), 24u);
  EXPECT_EQ(offsetof(kspan_listen_event, family), 28u);
  EXPECT_EQ(offsetof(kspan_listen_event, port), 30u);
  EXPECT_EQ(sizeof(kspan_listen_event), 32u);
  EXPECT_EQ(KSPAN_EV_PROC_FORK, 9);
  EXPECT_EQ(offsetof(kspan_fork_event, ppid), 24u);
  EXPECT_EQ(sizeof(kspan_fork_event), 32u);
}

TEST(AbiLayout, ConnKindsAndAgentFlags) {
  EXPECT_EQ(KSPAN_CONN_KIND_TCP, 0);  // what kernels before the field sent (padding)
  EXPECT_EQ(KSPAN_CONN_KIND_UNIX, 1);
  EXPECT_EQ(KSPAN_CONN_KIND_PIPE, 2);
  EXPECT_EQ(KSPAN_CONN_KIND_STDOUT, 3);
  EXPECT_EQ(KSPAN_CONN_KIND_STDERR, 4);
  EXPECT_EQ(KSPAN_AGENT_F_LOCAL, 1);
  EXPECT_EQ(KSPAN_AGENT_F_STDIO, 2);
  EXPECT_EQ(KSPAN_FD_OTHER, 0);
  EXPECT_EQ(KSPAN_FD_TCP, 1);
  EXPECT_EQ(KSPAN_FD_LOCAL, 2);
  EXPECT_EQ(KSPAN_FD_STDIO, 3);
}

// ks_conns as user space walks it (BpfEventSource::MarkAgent); bpf/maps.bpf.h asserts
// that the kernel's struct ks_conn / ks_fd_key match these.
TEST(AbiLayout, ConnMapKeyAndValue) {
  EXPECT_EQ(sizeof(kspan_fd_key), 8u);
  EXPECT_EQ(offsetof(kspan_fd_key, fd), 4u);
  EXPECT_EQ(sizeof(kspan_conn_state), 48u);
  EXPECT_EQ(offsetof(kspan_conn_state, generation), 8u);
  EXPECT_EQ(offsetof(kspan_conn_state, pos_out), 16u);
  EXPECT_EQ(offsetof(kspan_conn_state, pos_in), 24u);
  EXPECT_EQ(offsetof(kspan_conn_state, kind), 32u);
  EXPECT_EQ(offsetof(kspan_conn_state, role), 33u);
  EXPECT_EQ(offsetof(kspan_conn_state, _reserved), 40u);
}

TEST(AbiLayout, CaptureSizeIsPowerOfTwo) {
  EXPECT_EQ(KSPAN_MAX_CAPTURE & (KSPAN_MAX_CAPTURE - 1), 0);
  EXPECT_LE(KSPAN_DEFAULT_CAPTURE, KSPAN_MAX_CAPTURE);
  EXPECT_EQ(KSPAN_ARGS_LEN & (KSPAN_ARGS_LEN - 1), 0);
}

// The carrier's option (wire format: 28 bytes, exactly the room timestamps leave) and its
// per-socket state (include/kspan/bpf/carrier.h).
TEST(AbiLayout, Carrier) {
  EXPECT_EQ(KSPAN_CAR_LEN, 4 + static_cast<int>(sizeof(kspan_car_ctx)));
  EXPECT_EQ(sizeof(kspan_car_ctx), 24u);
  EXPECT_EQ(offsetof(kspan_car_ctx, span_id), 16u);
  EXPECT_EQ(sizeof(kspan_car_conn), 80u);
  EXPECT_EQ(offsetof(kspan_car_conn, in), 24u);
  EXPECT_EQ(offsetof(kspan_car_conn, snd_base), 48u);
  EXPECT_EQ(offsetof(kspan_car_conn, out_count), 72u);
  EXPECT_EQ(offsetof(kspan_car_conn, out_state), 76u);
  EXPECT_EQ(offsetof(kspan_car_conn, role), 77u);
  EXPECT_EQ(sizeof(kspan_car_event), 64u);
  EXPECT_EQ(offsetof(kspan_car_event, tid), 12u);
  EXPECT_EQ(offsetof(kspan_car_event, ts_ns), 56u);
  EXPECT_EQ(offsetof(kspan_car_event, tgid), 4u);
  EXPECT_EQ(offsetof(kspan_car_event, fd), 8u);
  EXPECT_EQ(offsetof(kspan_car_event, cookie), 16u);
  EXPECT_EQ(offsetof(kspan_car_event, offset), 24u);
  EXPECT_EQ(offsetof(kspan_car_event, ctx), 32u);
  EXPECT_EQ(KSPAN_CAR_UNPLACED, 8);
  EXPECT_EQ(KSPAN_CAR_COUNTERS, 9);
}

}  // namespace
