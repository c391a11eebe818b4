/* error.c — thr_strerror / thr_err_name, generated from THR_ERRNO_MAP. */
#include "threader.h"

const char* thr_strerror(int err) {
  switch (err) {
    case 0:
      return "success";
#define THR_STRERROR_CASE_(name, value, text) \
  case THR_##name:                            \
    return text;
    THR_ERRNO_MAP(THR_STRERROR_CASE_)
#undef THR_STRERROR_CASE_
    default:
      return "unknown error";
  }
}

const char* thr_err_name(int err) {
  switch (err) {
    case 0:
      return "THR_OK";
#define THR_ERR_NAME_CASE_(name, value, text) \
  case THR_##name:                            \
    return "THR_" #name;
    THR_ERRNO_MAP(THR_ERR_NAME_CASE_)
#undef THR_ERR_NAME_CASE_
    default:
      return "THR_UNKNOWN";
  }
}
