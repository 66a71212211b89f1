// One file per dataset format; open_dataset() picks by the spec's kind.
#pragma once

#include <memory>
#include <string>

#include "mpq/data/dataset.h"

namespace mpq::data {

std::unique_ptr<Dataset> open_cifar10(const std::string& path);
std::unique_ptr<Dataset> open_idx(const std::string& images, const std::string& labels);
std::unique_ptr<Dataset> open_image_folder(const std::string& dir, const std::string& labels_csv);
// A JPEG's pixels as RGB uint8 [3, H, W] (grey and CMYK converted); `where` names it in errors.
at::Tensor decode_jpeg(const std::string& bytes, const std::string& where);

}  // namespace mpq::data
