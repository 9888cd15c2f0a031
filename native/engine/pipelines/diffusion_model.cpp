#include "pipelines/diffusion_model.hpp"

namespace ovd {

const char* task_name(Task task) {
    switch (task) {
        case Task::Text2Image: return "text-to-image";
        case Task::Image2Image: return "image-to-image";
        case Task::Inpainting: return "inpainting";
    }
    return "unknown";
}

}  // namespace ovd
