// host_share.cc — binding.share / binding.release for threader.share()
// (issue 5).  Placeholder: installs nothing yet.
#include "host_binding.h"

namespace v8c {

bool HostBinding::InstallShare(v8::Local<v8::Context> context,
                               v8::Local<v8::Object> object) {
  return true;
}

}  // namespace v8c
