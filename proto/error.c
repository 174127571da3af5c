/* Messages and names for the codes in error.h, generated from the same X-macro. */
#include "proto/error.h"

const char *ov_strerror(int code)
{
    switch (code) {
    case OV_OK:
        return "success";
#define OV_ERROR_TEXT(name, value, text)                                                           \
    case value:                                                                                    \
        return text;
        OV_ERROR_MAP(OV_ERROR_TEXT)
#undef OV_ERROR_TEXT
    }
    return "unknown error";
}

const char *ov_error_name(int code)
{
    switch (code) {
    case OV_OK:
        return "OV_OK";
#define OV_ERROR_NAME(name, value, text)                                                           \
    case value:                                                                                    \
        return "OV_E" #name;
        OV_ERROR_MAP(OV_ERROR_NAME)
#undef OV_ERROR_NAME
    }
    return "OV_E?";
}
