#include "correlator/db_span.h"

#include <algorithm>
#include <memory>
#include <string>
#include <utility>

#include "correlator/unanswered.h"
#include "correlator/url.h"
#include "protocols/common/sql.h"
#include "protocols/memcache/spec.h"
#include "protocols/redis/parse.h"

namespace kspan::correlator {

namespace {

// A database call's span (CLIENT, or the server's SERVER), before its attributes: fresh
// ids, sampled, from the request's start to the end of its answer (or of the request, when
// none came).
template <typename Timing>
model::Span CallSpan(const Timing& request, const Timing& response, bool answered,
                     std::shared_ptr<const model::Resource> resource,
                     model::SpanKind kind = model::SpanKind::kClient) {
  model::Span span;
  span.kind = kind;
  span.resource = std::move(resource);
  span.span_id = model::SpanId::Random();
  span.trace_id = model::TraceId::Random();
  span.trace_flags = 0x01;
  span.start_time_unix_nano = request.start_ns;
  span.end_time_unix_nano =
      std::max({answered ? response.end_ns : uint64_t{0}, request.end_ns, request.start_ns});
  return span;
}

}  // namespace

namespace mc = protocols::memcache;

std::optional<model::Span> BuildMemcacheSpan(const mc::Record& record, const DbConnContext& conn,
                                             std::shared_ptr<const model::Resource> resource) {
  if (conn.is_server) return std::nullopt;
  const bool answered = !record.response_missing && record.result != mc::Result::kNone;

  model::Span span = CallSpan(record.request, record.response, answered, std::move(resource));

  const std::string_view op = mc::CommandName(record.command);
  const events::Endpoint& server = conn.tuple.remote;
  span.name.assign(op);
  if (!server.address.empty()) {
    span.name.push_back(' ');
    AppendUrlHost(&span.name, server.address);
    if (server.port) span.name += ":" + std::to_string(server.port);
  }

  auto& a = span.attributes;
  a.reserve(12);
  a.push_back({"db.system.name", std::string("memcached")});
  a.push_back({"db.operation.name", std::string(op)});
  if (answered) {
    if (const std::string_view word = mc::ResultWord(record.result); !word.empty()) {
      a.push_back({"db.response.status_code", std::string(word)});
    }
  }
  if (mc::IsRetrieval(record.command)) {
    if (answered && record.result == mc::Result::kValues) {
      a.push_back({"db.response.returned_rows", static_cast<int64_t>(record.hits)});
    }
    a.push_back({"memcached.keys", static_cast<int64_t>(record.keys)});
  }
  if (!server.address.empty()) {
    a.push_back({"server.address", server.address});
    if (server.port) a.push_back({"server.port", int64_t{server.port}});
    a.push_back({"network.peer.address", server.address});
    if (server.port) a.push_back({"network.peer.port", int64_t{server.port}});
  }

  switch (answered ? record.result : mc::Result::kNone) {
    case mc::Result::kError:
    case mc::Result::kClientError:
    case mc::Result::kServerError:
      span.status_code = model::StatusCode::kError;
      span.status_message = record.message;
      a.push_back({"error.type", std::string(mc::ResultWord(record.result))});
      break;
    default: break;
  }
  if (record.response_missing) MarkUnanswered(record.unanswered, &span);
  return span;
}

}  // namespace kspan::correlator

namespace kspan::correlator {

namespace rd = protocols::redis;

std::optional<model::Span> BuildRedisSpan(const rd::Record& record, const DbConnContext& conn,
                                          std::shared_ptr<const model::Resource> resource) {
  if (conn.is_server) return std::nullopt;
  const bool answered = !record.response_missing && record.reply != rd::Reply::kNone;

  model::Span span = CallSpan(record.request, record.response, answered, std::move(resource));

  const std::string op = record.command.empty() ? std::string("_OTHER") : record.command;
  const events::Endpoint& server = conn.tuple.remote;
  span.name = op;
  if (!server.address.empty()) {
    span.name.push_back(' ');
    AppendUrlHost(&span.name, server.address);
    if (server.port) span.name += ":" + std::to_string(server.port);
  }

  auto& a = span.attributes;
  a.reserve(13);
  a.push_back({"db.system.name", std::string("redis")});
  a.push_back({"db.operation.name", op});
  a.push_back({"db.query.text", rd::QueryText(record)});
  if (record.db >= 0) a.push_back({"db.namespace", std::to_string(record.db)});
  const bool error = answered && !record.error_prefix.empty();
  if (error) a.push_back({"db.response.status_code", record.error_prefix});
  if (answered && record.exec && record.queued != 1) {
    // A transaction of one command is a single operation (v1.44 db.operation.batch.size).
    a.push_back({"db.operation.batch.size", static_cast<int64_t>(record.queued)});
  }
  if (record.in_transaction) a.push_back({"redis.queued", true});
  if (!server.address.empty()) {
    a.push_back({"server.address", server.address});
    if (server.port) a.push_back({"server.port", int64_t{server.port}});
    a.push_back({"network.peer.address", server.address});
    if (server.port) a.push_back({"network.peer.port", int64_t{server.port}});
  }
  if (error) {
    span.status_code = model::StatusCode::kError;
    a.push_back({"error.type", record.error_prefix});
  }
  if (record.response_missing) MarkUnanswered(record.unanswered, &span);
  return span;
}

}  // namespace kspan::correlator

namespace kspan::correlator {

namespace pg = protocols::postgres;

std::optional<model::Span> BuildPostgresSpan(const pg::Record& record, const DbConnContext& conn,
                                             std::shared_ptr<const model::Resource> resource) {
  if (!pg::IsOperation(record.unit)) return std::nullopt;
  // A walsender's commands (START_REPLICATION streams for the session's life) are not
  // operations a caller waits for: no SERVER span (spec.cc announces them so).
  if (conn.is_server && record.replication) return std::nullopt;
  model::Span span = CallSpan(record.request, record.response, !record.response_missing, std::move(resource),
                              conn.is_server ? model::SpanKind::kServer : model::SpanKind::kClient);

  std::string op = record.unit == pg::Unit::kFunction ? std::string("FUNCTION CALL") : record.operation;
  // A unit that only prepared a statement (Parse, Describe, Sync): preparing is what it did
  // (unless its answer completed a command: a unit whose Execute a capture hole took).
  if (record.unit == pg::Unit::kExtended && record.executes == 0 && record.command_tag.empty())
    op = "PREPARE";
  if (record.executes > 1 && !op.empty()) op = "BATCH " + op;
  if (op.empty()) op = record.executes > 1 ? "BATCH" : "_OTHER";
  // Target: the one table the statement names, else the database (v1.44 "Name").
  const std::string_view collection = protocols::sql::CollectionName(record.query);
  span.name = op;
  if (!collection.empty()) {
    span.name += " " + std::string(collection);
  } else if (!record.database.empty()) {
    span.name += " " + record.database;
  }

  auto& a = span.attributes;
  a.reserve(15);
  a.push_back({"db.system.name", std::string("postgresql")});
  a.push_back({"db.operation.name", op});
  if (!record.database.empty()) a.push_back({"db.namespace", record.database});
  if (!collection.empty()) a.push_back({"db.collection.name", std::string(collection)});
  if (!record.query.empty()) a.push_back({"db.query.text", record.query});
  if (record.query_truncated) a.push_back({"kspan.db.query.truncated", true});
  if (record.executes > 1) a.push_back({"db.operation.batch.size", static_cast<int64_t>(record.executes)});
  const bool ok = !record.response_missing && !record.errored;
  if (ok && record.copy_out && record.tag_rows >= 0) {
    // COPY TO STDOUT: the rows are CopyData, counted by CommandComplete "COPY n".
    a.push_back({"db.response.returned_rows", record.tag_rows});
  } else if (ok && record.copy_in && record.tag_rows >= 0) {
    // COPY FROM STDIN: rows the client sent and the server stored; v1.44 has no
    // attribute for rows written.
    a.push_back({"kspan.db.response.affected_rows", record.tag_rows});
  } else if (ok && record.data_rows > 0) {
    a.push_back({"db.response.returned_rows", static_cast<int64_t>(record.data_rows)});
  }
  if (conn.is_server) {
    // The server's own end is server.*, the caller client.* and network.peer.*.
    const events::Endpoint& local = conn.tuple.local;
    const events::Endpoint& peer = conn.tuple.remote;
    if (!local.address.empty()) a.push_back({"server.address", local.address});
    if (local.port) a.push_back({"server.port", int64_t{local.port}});
    if (!peer.address.empty()) {
      a.push_back({"client.address", peer.address});
      if (peer.port) a.push_back({"client.port", int64_t{peer.port}});
      a.push_back({"network.peer.address", peer.address});
      if (peer.port) a.push_back({"network.peer.port", int64_t{peer.port}});
    }
  } else if (const events::Endpoint& server = conn.tuple.remote; !server.address.empty()) {
    a.push_back({"server.address", server.address});
    if (server.port) a.push_back({"server.port", int64_t{server.port}});
    a.push_back({"network.peer.address", server.address});
    if (server.port) a.push_back({"network.peer.port", int64_t{server.port}});
  }
  if (!record.response_missing && record.errored) {
    const std::string code = record.sqlstate.empty() ? std::string("_OTHER") : record.sqlstate;
    span.status_code = model::StatusCode::kError;
    if (!record.sqlstate.empty()) a.push_back({"db.response.status_code", record.sqlstate});
    a.push_back({"error.type", code});
  }
  if (record.response_missing) MarkUnanswered(record.unanswered, &span);
  return span;
}

}  // namespace kspan::correlator

namespace kspan::correlator {

namespace my = protocols::mysql;

std::optional<model::Span> BuildMysqlSpan(const my::Record& record, const DbConnContext& conn,
                                          std::shared_ptr<const model::Resource> resource) {
  if (conn.is_server || !my::IsOperation(record.unit)) return std::nullopt;
  model::Span span = CallSpan(record.request, record.response, !record.response_missing, std::move(resource));

  std::string op = record.unit == my::Unit::kPrepare ? std::string("PREPARE") : record.operation;
  if (op.empty()) op = "_OTHER";
  const std::string_view collection = protocols::sql::CollectionName(record.query);
  span.name = op;
  if (!collection.empty()) {
    span.name += " " + std::string(collection);
  } else if (!record.database.empty()) {
    span.name += " " + record.database;
  }

  auto& a = span.attributes;
  a.reserve(13);
  a.push_back({"db.system.name", std::string(record.mariadb ? "mariadb" : "mysql")});
  a.push_back({"db.operation.name", op});
  if (!record.database.empty()) a.push_back({"db.namespace", record.database});
  if (!collection.empty()) a.push_back({"db.collection.name", std::string(collection)});
  if (!record.query.empty()) a.push_back({"db.query.text", record.query});
  if (!record.response_missing && !record.errored && record.data_rows > 0) {
    a.push_back({"db.response.returned_rows", static_cast<int64_t>(record.data_rows)});
  }
  const events::Endpoint& server = conn.tuple.remote;
  if (!server.address.empty()) {
    a.push_back({"server.address", server.address});
    if (server.port) a.push_back({"server.port", int64_t{server.port}});
    a.push_back({"network.peer.address", server.address});
    if (server.port) a.push_back({"network.peer.port", int64_t{server.port}});
  }
  if (!record.response_missing && record.errored) {
    const std::string code = std::to_string(record.error_code);
    span.status_code = model::StatusCode::kError;
    a.push_back({"db.response.status_code", code});
    a.push_back({"error.type", code});
  }
  if (record.response_missing) MarkUnanswered(record.unanswered, &span);
  return span;
}

}  // namespace kspan::correlator
