// Image folder: JPEG files and a CSV `file,label[,...]` (header line first). Images are decoded
// on demand with libjpeg(-turbo) into RGB uint8 [3, H, W]; grey and CMYK JPEGs are converted.
#include <csetjmp>
#include <cstddef>
#include <cstdio>
// jpeglib.h uses size_t and FILE without including their headers: keep it after them.
#include <jpeglib.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "mpq/core/error.h"
#include "mpq/core/file.h"
#include "readers.h"

namespace mpq::data {
namespace {

struct JpegError {
  jpeg_error_mgr mgr;
  std::jmp_buf jump;
  char message[JMSG_LENGTH_MAX];
};

void on_jpeg_error(j_common_ptr cinfo) {
  auto* err = reinterpret_cast<JpegError*>(cinfo->err);
  (*cinfo->err->format_message)(cinfo, err->message);
  std::longjmp(err->jump, 1);
}

// The largest decoded image mpq reads: 2^28 bytes (e.g. 9,000 x 9,000 RGB).
constexpr int64_t kMaxJpegBytes = int64_t{1} << 28;

// libjpeg reports errors by longjmp: this function holds no C++ object whose state changes
// between setjmp and a longjmp, so nothing is skipped. False with err->message on an error.
bool decode_jpeg_pixels(const std::string& bytes, std::vector<uint8_t>* pixels, int64_t shape[3],
                        bool* cmyk, JpegError* err) {
  jpeg_decompress_struct cinfo;
  cinfo.err = jpeg_std_error(&err->mgr);
  err->mgr.error_exit = on_jpeg_error;
  err->mgr.output_message = [](j_common_ptr) {};  // warnings (e.g. extraneous bytes) are fine
  if (setjmp(err->jump)) {
    jpeg_destroy_decompress(&cinfo);
    return false;
  }
  jpeg_create_decompress(&cinfo);
  jpeg_mem_src(&cinfo, reinterpret_cast<const unsigned char*>(bytes.data()), bytes.size());
  jpeg_read_header(&cinfo, TRUE);
  *cmyk = cinfo.jpeg_color_space == JCS_CMYK || cinfo.jpeg_color_space == JCS_YCCK;
  cinfo.out_color_space = *cmyk ? JCS_CMYK : JCS_RGB;
  jpeg_calc_output_dimensions(&cinfo);
  const int64_t h = cinfo.output_height, w = cinfo.output_width, c = cinfo.output_components;
  if (h * w * c > kMaxJpegBytes) {
    std::snprintf(err->message, sizeof(err->message),
                  "%lldx%lld pixels is larger than mpq decodes (2^28 bytes)",
                  static_cast<long long>(w), static_cast<long long>(h));
    jpeg_destroy_decompress(&cinfo);
    return false;
  }
  pixels->resize(static_cast<size_t>(h * w * c));
  jpeg_start_decompress(&cinfo);
  while (cinfo.output_scanline < cinfo.output_height) {
    JSAMPROW row = pixels->data() + static_cast<int64_t>(cinfo.output_scanline) * w * c;
    jpeg_read_scanlines(&cinfo, &row, 1);
  }
  jpeg_finish_decompress(&cinfo);
  jpeg_destroy_decompress(&cinfo);
  shape[0] = h, shape[1] = w, shape[2] = c;
  return true;
}

}  // namespace

at::Tensor decode_jpeg(const std::string& bytes, const std::string& where) {
  std::vector<uint8_t> pixels;
  int64_t shape[3] = {0, 0, 0};
  bool cmyk = false;
  JpegError err;
  err.message[0] = '\0';
  if (!decode_jpeg_pixels(bytes, &pixels, shape, &cmyk, &err))
    fail(ErrorCode::kBadFile, "{}: cannot decode JPEG: {}", where, err.message);
  at::Tensor hwc = at::empty({shape[0], shape[1], shape[2]}, at::kByte);
  std::memcpy(hwc.data_ptr(), pixels.data(), pixels.size());
  if (cmyk) {  // Adobe CMYK JPEGs store inverted values: R = C·K/255, etc.
    at::Tensor f = hwc.to(at::kFloat);
    at::Tensor k = f.select(2, 3).unsqueeze(2);
    hwc = (f.slice(2, 0, 3) * k / 255.0).round().clamp(0, 255).to(at::kByte);
  }
  return hwc.permute({2, 0, 1}).contiguous();
}

namespace {

// Splits one CSV line, honouring double quotes.
std::vector<std::string> csv_fields(const std::string& line) {
  std::vector<std::string> out(1);
  bool quoted = false;
  for (size_t i = 0; i < line.size(); ++i) {
    char ch = line[i];
    if (ch == '"') {
      if (quoted && i + 1 < line.size() && line[i + 1] == '"') {
        out.back() += '"';
        ++i;
      } else {
        quoted = !quoted;
      }
    } else if (ch == ',' && !quoted) {
      out.emplace_back();
    } else if (ch != '\r') {
      out.back() += ch;
    }
  }
  return out;
}

class ImageFolder : public Dataset {
 public:
  ImageFolder(const std::string& dir, const std::string& labels_csv) : dir_(dir) {
    MPQ_CHECK(std::filesystem::is_directory(dir), ErrorCode::kBadFile,
              "{}: image folder does not exist", dir);
    std::string csv =
        labels_csv.empty() ? (std::filesystem::path(dir) / "labels.csv").string() : labels_csv;
    MPQ_CHECK(file_exists(csv), ErrorCode::kBadFile,
              "{}: labels file is missing; an image folder needs a CSV with 'file,label' lines",
              csv);
    std::istringstream in(read_file(csv, "labels file"));  // a regular file, read once
    std::string line;
    int64_t line_no = 0;
    while (std::getline(in, line)) {
      ++line_no;
      if (line.empty() || line == "\r") continue;
      auto f = csv_fields(line);
      if (line_no == 1 && f[0] == "file") continue;  // header
      MPQ_CHECK(f.size() >= 2, ErrorCode::kBadFile, "{}:{}: expected 'file,label', got '{}'", csv,
                line_no, line);
      int64_t label = -1;
      try {
        size_t used = 0;
        label = std::stoll(f[1], &used);
        if (used != f[1].size()) label = -1;
      } catch (const std::exception&) {
      }
      MPQ_CHECK(label >= 0, ErrorCode::kBadFile, "{}:{}: label '{}' must be a non-negative integer",
                csv, line_no, f[1]);
      files_.push_back(f[0]);
      labels_.push_back(label);
    }
    MPQ_CHECK(!files_.empty(), ErrorCode::kBadFile, "{}: no images listed", csv);
  }
  int64_t size() const override { return static_cast<int64_t>(files_.size()); }
  int64_t label(int64_t i) const override { return labels_[i]; }
  at::Tensor image(int64_t i) const override {
    std::string path = (std::filesystem::path(dir_) / files_[i]).string();
    return decode_jpeg(read_file(path, "image"), path);
  }
  std::string where(int64_t i) const override {
    return (std::filesystem::path(dir_) / files_[i]).string();
  }
  std::string kind() const override { return "imagefolder"; }

 private:
  std::string dir_;
  std::vector<std::string> files_;
  std::vector<int64_t> labels_;
};

}  // namespace

std::unique_ptr<Dataset> open_image_folder(const std::string& dir, const std::string& labels_csv) {
  return std::make_unique<ImageFolder>(dir, labels_csv);
}

}  // namespace mpq::data
