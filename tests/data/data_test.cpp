#include <zlib.h>

#include <cstddef>
#include <cstdio>
// jpeglib.h uses size_t and FILE without including their headers: keep it after them.
#include <jpeglib.h>

#include <fstream>

#include "data/readers.h"
#include "mpq/core/error.h"
#include "mpq/data/dataset.h"
#include "mpq/eval/evaluate.h"
#include "test_util.h"

namespace mpq {
namespace {

using test::error_of;

void write_cifar(const std::string& path, const std::vector<uint8_t>& labels) {
  std::ofstream out(path, std::ios::binary);
  for (size_t i = 0; i < labels.size(); ++i) {
    out.put(static_cast<char>(labels[i]));
    for (int p = 0; p < 3072; ++p)
      out.put(static_cast<char>((p / 1024) * 100 + i));  // R,G,B planes
  }
}

TEST(Cifar10, ReadsRecordsAsChannelPlanes) {
  auto dir = test::temp_dir("cifar");
  write_cifar(dir / "a.bin", {3, 9, 0});
  data::DataSpec spec = data::parse_spec("cifar10:" + (dir / "a.bin").string());
  auto ds = data::open_dataset(spec);
  ASSERT_EQ(ds->size(), 3);
  EXPECT_EQ(ds->label(1), 9);
  at::Tensor img = ds->image(2);
  EXPECT_EQ(img.sizes(), (std::vector<int64_t>{3, 32, 32}));
  EXPECT_EQ(img[0][5][5].item<uint8_t>(), 2);
  EXPECT_EQ(img[2][5][5].item<uint8_t>(), 202);
  // Preprocessing: (x/255 - mean) / std per channel.
  data::Loader loader(*ds, spec, data::Preprocess{0, 0, {0.5, 0.5, 0.5}, {0.25, 0.5, 1.0}}, 2);
  ASSERT_EQ(loader.batches(), 2);
  data::Batch b = loader.batch(1);
  EXPECT_EQ(b.images.size(0), 1);
  EXPECT_NEAR(b.images[0][1][0][0].item<float>(), (102 / 255.0 - 0.5) / 0.5, 1e-6);
}

TEST(Cifar10, SizeNotAWholeNumberOfRecords) {
  auto dir = test::temp_dir("cifar");
  write_cifar(dir / "a.bin", {1, 2});
  std::ofstream(dir / "a.bin", std::ios::app) << "xyz";
  std::string msg = error_of(
      [&] { data::open_dataset(data::parse_spec("cifar10:" + (dir / "a.bin").string())); });
  EXPECT_NE(msg.find("a.bin"), std::string::npos) << msg;
  EXPECT_NE(msg.find("not a whole number of 3073-byte"), std::string::npos) << msg;
}

TEST(Cifar10, LabelOutOfRange) {
  auto dir = test::temp_dir("cifar");
  write_cifar(dir / "a.bin", {1, 12});
  std::string msg = error_of(
      [&] { data::open_dataset(data::parse_spec("cifar10:" + (dir / "a.bin").string())); });
  EXPECT_NE(msg.find("record 1 has label 12"), std::string::npos) << msg;
}

TEST(DataSpec, SubsetsAndErrors) {
  auto dir = test::temp_dir("cifar");
  write_cifar(dir / "a.bin", {0, 1, 2, 3, 4, 5});
  std::string path = (dir / "a.bin").string();
  auto first = data::parse_spec("cifar10:" + path + "@4");
  auto ds = data::open_dataset(first);
  data::Loader a(*ds, first, data::default_preprocess("cifar10"), 8);
  EXPECT_EQ(a.order(), (std::vector<int64_t>{0, 1, 2, 3}));
  auto seeded = data::parse_spec("cifar10:" + path + "@4:7");
  data::Loader b(*ds, seeded, data::default_preprocess("cifar10"), 8),
      c(*ds, seeded, data::default_preprocess("cifar10"), 8);
  EXPECT_EQ(b.order(), c.order());  // fixed order for a seed
  EXPECT_EQ(b.size(), 4);
  EXPECT_NE(error_of([&] { data::parse_spec("mnist:" + path); }).find("unknown kind 'mnist'"),
            std::string::npos);
  EXPECT_NE(error_of([&] { data::parse_spec("cifar10:" + path + "@x"); }).find("count 'x'"),
            std::string::npos);
  auto too_many = data::parse_spec("cifar10:" + path + "@100");
  EXPECT_NE(error_of([&] {
              data::Loader(*ds, too_many, {}, 8);
            }).find("asks for 100 images but the data holds 6"),
            std::string::npos);
}

void write_gz(const std::string& path, const std::string& bytes) {
  gzFile f = gzopen(path.c_str(), "wb");
  gzwrite(f, bytes.data(), static_cast<unsigned>(bytes.size()));
  gzclose(f);
}

std::string be32(uint32_t v) { return {char(v >> 24), char(v >> 16), char(v >> 8), char(v)}; }

TEST(Idx, ReadsGzippedImagesAndLabels) {
  auto dir = test::temp_dir("idx");
  std::string img = be32(0x803) + be32(2) + be32(3) + be32(2) +
                    std::string("\x01\x02\x03\x04\x05\x06\x07\x08\x09\x0a\x0b\x0c", 12);
  write_gz(dir / "img.gz", img);
  write_gz(dir / "lbl.gz", be32(0x801) + be32(2) + std::string("\x04\x07", 2));
  auto spec =
      data::parse_spec("idx:" + (dir / "img.gz").string() + "," + (dir / "lbl.gz").string());
  auto ds = data::open_dataset(spec);
  ASSERT_EQ(ds->size(), 2);
  EXPECT_EQ(ds->label(1), 7);
  EXPECT_EQ(ds->image(1).sizes(), (std::vector<int64_t>{1, 3, 2}));
  EXPECT_EQ(ds->image(1)[0][2][1].item<uint8_t>(), 12);
  // A wrong magic number is named.
  write_gz(dir / "bad.gz", be32(0x999) + be32(0));
  std::string msg = error_of([&] {
    data::open_dataset(
        data::parse_spec("idx:" + (dir / "bad.gz").string() + "," + (dir / "lbl.gz").string()));
  });
  EXPECT_NE(msg.find("not an IDX image file"), std::string::npos) << msg;
}

void write_jpeg(const std::string& path, int w, int h);

TEST(Idx, HeaderCountsWhoseProductOverflowAreNamed) {
  // Found by fuzzing: 2^32-1 images of 2^32-1 x 2^32-1 overflowed the size check (signed).
  auto dir = test::temp_dir("idx_overflow");
  write_gz(dir / "img.gz", be32(0x803) + be32(0xffffffff) + be32(0xffffffff) + be32(0xffffffff));
  write_gz(dir / "lbl.gz", be32(0x801) + be32(0));
  std::string msg = error_of([&] {
    data::open_dataset(
        data::parse_spec("idx:" + (dir / "img.gz").string() + "," + (dir / "lbl.gz").string()));
  });
  EXPECT_NE(msg.find("header says 4294967295 images of 4294967295x4294967295"), std::string::npos)
      << msg;
  EXPECT_EQ(msg.find('\n'), std::string::npos);
}

TEST(Files, ADeviceIsNotReadAsAFile) {
  // /dev/zero would be read forever, by every reader.
  auto dir = test::temp_dir("device");
  const std::vector<std::string> specs = {"cifar10:/dev/zero", "idx:/dev/zero,/dev/zero",
                                          "imagefolder:" + dir.string() + ",/dev/zero"};
  for (const std::string& spec : specs) {
    std::string msg = error_of([&] { data::open_dataset(data::parse_spec(spec)); });
    EXPECT_NE(msg.find("/dev/zero: is not a regular file"), std::string::npos)
        << spec << ": " << msg;
  }
}

TEST(ImageFolder, AJpegLargerThanTheLimitIsAnErrorNotAnAllocation) {
  // A 65000 x 65000 header (12.7 GB decoded) with nothing after it.
  auto dir = test::temp_dir("jpeg_huge");
  write_jpeg((dir / "small.jpg").string(), 16, 16);
  std::ifstream in(dir / "small.jpg", std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(in)), {});
  // The SOF0 marker (FF C0): length(2) precision(1) height(2) width(2).
  size_t sof = bytes.find("\xff\xc0");
  ASSERT_NE(sof, std::string::npos);
  bytes[sof + 5] = bytes[sof + 7] = static_cast<char>(0xfd);
  bytes[sof + 6] = bytes[sof + 8] = static_cast<char>(0xe8);
  std::string msg = error_of([&] { data::decode_jpeg(bytes, "huge.jpg"); });
  EXPECT_NE(msg.find("huge.jpg: cannot decode JPEG: 65000x65000 pixels is larger than"),
            std::string::npos)
      << msg;
}

void write_jpeg(const std::string& path, int w, int h) {
  std::vector<uint8_t> rgb(w * h * 3);
  for (size_t i = 0; i < rgb.size(); ++i) rgb[i] = static_cast<uint8_t>(i * 7);
  jpeg_compress_struct c;
  jpeg_error_mgr err;
  c.err = jpeg_std_error(&err);
  jpeg_create_compress(&c);
  FILE* f = std::fopen(path.c_str(), "wb");
  jpeg_stdio_dest(&c, f);
  c.image_width = w;
  c.image_height = h;
  c.input_components = 3;
  c.in_color_space = JCS_RGB;
  jpeg_set_defaults(&c);
  jpeg_start_compress(&c, TRUE);
  while (c.next_scanline < c.image_height) {
    JSAMPROW row = rgb.data() + c.next_scanline * w * 3;
    jpeg_write_scanlines(&c, &row, 1);
  }
  jpeg_finish_compress(&c);
  jpeg_destroy_compress(&c);
  std::fclose(f);
}

TEST(ImageFolder, DecodesResizesAndCrops) {
  auto dir = test::temp_dir("folder");
  write_jpeg(dir / "a.jpg", 40, 30);
  write_jpeg(dir / "it's.jpg", 30, 50);
  std::ofstream(dir / "labels.csv") << "file,label,wnid\na.jpg,3,n1\nit's.jpg,5,n2\n";
  auto spec = data::parse_spec("imagefolder:" + dir.string());
  auto ds = data::open_dataset(spec);
  ASSERT_EQ(ds->size(), 2);
  EXPECT_EQ(ds->label(1), 5);
  EXPECT_EQ(ds->image(0).sizes(), (std::vector<int64_t>{3, 30, 40}));
  data::Loader loader(*ds, spec, data::Preprocess{24, 20, {0.5, 0.5, 0.5}, {0.5, 0.5, 0.5}}, 2);
  data::Batch b = loader.batch(0);
  EXPECT_EQ(b.images.sizes(), (std::vector<int64_t>{2, 3, 20, 20}));
  EXPECT_LE(b.images.max().item<float>(), 1.0f);
  EXPECT_GE(b.images.min().item<float>(), -1.0f);
}

TEST(ImageFolder, ImageThatFailsToDecode) {
  auto dir = test::temp_dir("folder_bad");
  std::ofstream(dir / "broken.jpg") << "this is not a jpeg";
  std::ofstream(dir / "labels.csv") << "file,label\nbroken.jpg,1\n";
  auto spec = data::parse_spec("imagefolder:" + dir.string());
  auto ds = data::open_dataset(spec);
  std::string msg = error_of([&] { ds->image(0); });
  EXPECT_NE(msg.find("broken.jpg"), std::string::npos) << msg;
  EXPECT_NE(msg.find("cannot decode JPEG"), std::string::npos) << msg;
}

TEST(Eval, DataThatDoesNotFitTheModelInput) {
  test::GraphBuilder b({-1, 3, 32, 32});
  ir::Graph g = b.finish(b.op("Relu", {b.g.inputs[0]}));
  data::Batch batch{at::zeros({2, 1, 28, 28}), at::zeros({2}, at::kLong), 0};
  std::string msg = error_of([&] { eval::check_batch(g, batch, -1, "idx:fashion"); });
  EXPECT_NE(msg.find("1x28x28"), std::string::npos) << msg;
  EXPECT_NE(msg.find("expects 3x32x32"), std::string::npos) << msg;
  data::Batch labels{at::zeros({2, 3, 32, 32}), at::tensor({1, 17}, at::kLong), 0};
  msg = error_of([&] { eval::check_batch(g, labels, 10, "cifar10:x.bin"); });
  EXPECT_NE(msg.find("label 17 is out of range for a model with 10 output classes"),
            std::string::npos)
      << msg;
}

}  // namespace
}  // namespace mpq
