#include "core/event.hpp"

#include <gtest/gtest.h>

#include <string>

namespace sluice {
namespace {

constexpr std::string_view kAt = "2026-08-21T12:00:00.123+00:00";

std::string path_of(std::string_view event) {
  const auto change = resource_change_of(event);
  return change ? change->path : "<none>";
}

TEST(ResourceChange, EveryFormOfARowHasOnePath) {
  const std::string row = "databases/D/tables/T/rows/R";
  EXPECT_EQ(path_of("tablesdb.D.tables.T.rows.R.update"), row);
  EXPECT_EQ(path_of("databases.D.tables.T.rows.R.create"), row);
  EXPECT_EQ(path_of("databases.D.collections.T.documents.R.upsert"), row);
  EXPECT_EQ(path_of("documentsdb.D.collections.T.documents.R.update"), row);
  EXPECT_FALSE(resource_change_of("tablesdb.D.tables.T.rows.R.update")->deleted);
  EXPECT_TRUE(resource_change_of("tablesdb.D.tables.T.rows.R.delete")->deleted);
}

TEST(ResourceChange, EveryResourceFamily) {
  EXPECT_EQ(path_of("buckets.B.files.F.create"), "buckets/B/files/F");
  EXPECT_EQ(path_of("teams.T.create"), "teams/T");
  EXPECT_EQ(path_of("teams.T.update.prefs"), "teams/T");
  EXPECT_EQ(path_of("teams.T.memberships.M.update.status"), "teams/T/memberships/M");
  EXPECT_EQ(path_of("functions.F.executions.E.update"), "functions/F/executions/E");
  EXPECT_EQ(path_of("users.U.update.name"), "users/U");
  EXPECT_EQ(path_of("users.U.sessions.S.create"), "users/U/sessions/S");
  // Ids are only ever between a type and the next type or the action: a row named like an
  // action is still a row.
  EXPECT_EQ(path_of("tablesdb.D.tables.update.rows.delete.create"),
            "databases/D/tables/update/rows/delete");
}

TEST(ResourceChange, NotAResourceChange) {
  for (const std::string_view e :
       {"sluice.gap", "stats.connections", "test.event", "", "teams", "update", "teams.T",
        "teams.T.rename", "teams..create", "teams.T.update.a.b", "create.x.update",
        "a.1.b.2.c.3.d.4.update"}) {
    EXPECT_FALSE(resource_change_of(e)) << e;
  }
}

TEST(ChangeId, CreateUpdateAndUpsertOfOneInstantAreOneChange) {
  const auto id = make_change_id("p", "tablesdb.D.tables.T.rows.R.create", "R", kAt);
  EXPECT_EQ(id.size(), 32u);
  EXPECT_EQ(id.find_first_not_of("0123456789abcdef"), std::string::npos);
  EXPECT_EQ(make_change_id("p", "tablesdb.D.tables.T.rows.R.update", "R", kAt), id);
  EXPECT_EQ(make_change_id("p", "databases.D.collections.T.documents.R.upsert", "R", kAt), id);
}

TEST(ChangeId, DeleteTimeProjectAndResourceMatter) {
  const auto id = make_change_id("p", "tablesdb.D.tables.T.rows.R.update", "R", kAt);
  EXPECT_NE(make_change_id("p", "tablesdb.D.tables.T.rows.R.delete", "R", kAt), id);
  EXPECT_NE(make_change_id("p", "tablesdb.D.tables.T.rows.R.update", "R",
                           "2026-08-21T12:00:00.124+00:00"),
            id);
  EXPECT_NE(make_change_id("q", "tablesdb.D.tables.T.rows.R.update", "R", kAt), id);
  EXPECT_NE(make_change_id("p", "tablesdb.D.tables.T.rows.S.update", "S", kAt), id);
  EXPECT_NE(make_change_id("p", "tablesdb.D.tables.U.rows.R.update", "R", kAt), id);
  EXPECT_NE(make_change_id("p", "buckets.T.files.R.update", "R", kAt), id);
}

// The definition the README gives, so consumers can compute it too.
TEST(ChangeId, IsTheHashOfTheDocumentedText) {
  EXPECT_EQ(make_change_id("p", "tablesdb.D.tables.T.rows.R.update", "R", kAt),
            make_event_id("p\ndatabases/D/tables/T/rows/R\nchange\n" + std::string(kAt)));
  EXPECT_EQ(make_change_id("p", "buckets.B.files.F.delete", "F", kAt),
            make_event_id("p\nbuckets/B/files/F\ndelete\n" + std::string(kAt)));
}

TEST(ChangeId, EmptyWithoutAResourceIdOrTime) {
  EXPECT_EQ(make_change_id("p", "tablesdb.D.tables.T.rows.R.update", "", kAt), "");
  EXPECT_EQ(make_change_id("p", "tablesdb.D.tables.T.rows.R.update", "R", ""), "");
  EXPECT_EQ(make_change_id("p", "sluice.gap", "R", kAt), "");
}

}  // namespace
}  // namespace sluice
