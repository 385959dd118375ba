#include "core/text.hpp"

#include <string>

#include <gtest/gtest.h>

namespace sluice {
namespace {

using Pieces = std::vector<std::string_view>;

TEST(Split, EmptyTextIsOneEmptyPiece) {
  EXPECT_EQ(split("", '.'), Pieces{""});
}

TEST(Split, TextWithoutSeparatorIsOnePiece) {
  EXPECT_EQ(split("account", '.'), Pieces{"account"});
  EXPECT_EQ(split("buckets/photos", '.'), Pieces{"buckets/photos"});
}

TEST(Split, SplitsOnDots) {
  EXPECT_EQ(split("tablesdb.shop.tables.orders.rows", '.'),
            (Pieces{"tablesdb", "shop", "tables", "orders", "rows"}));
}

TEST(Split, SplitsOnSlashes) {
  EXPECT_EQ(split("databases/shop/tables/orders", '/'),
            (Pieces{"databases", "shop", "tables", "orders"}));
  EXPECT_EQ(split("databases/shop/tables/orders", '.'), Pieces{"databases/shop/tables/orders"});
}

TEST(Split, KeepsEmptyPiecesAtEitherEndAndBetweenDoubledSeparators) {
  EXPECT_EQ(split(".rows", '.'), (Pieces{"", "rows"}));
  EXPECT_EQ(split("rows.", '.'), (Pieces{"rows", ""}));
  EXPECT_EQ(split("files..create", '.'), (Pieces{"files", "", "create"}));
  EXPECT_EQ(split(".", '.'), (Pieces{"", ""}));
  EXPECT_EQ(split("//", '/'), (Pieces{"", "", ""}));
}

TEST(Split, PiecesAreViewsIntoTheText) {
  const std::string text = "buckets.photos.files";
  const auto pieces = split(text, '.');
  ASSERT_EQ(pieces.size(), 3u);
  EXPECT_EQ(pieces[1].data(), text.data() + 8);
  EXPECT_EQ(pieces[2].data() + pieces[2].size(), text.data() + text.size());
}

}  // namespace
}  // namespace sluice
