/*
 * LMDB return codes as OV_E* errors, for the modules that talk to LMDB (the store and the search
 * index it holds): not found, map full and out of memory keep their meaning; anything else is a
 * storage error.
 */
#ifndef OV_LMDB_ERROR_H
#define OV_LMDB_ERROR_H

#include <errno.h>
#include <lmdb.h>

#include "proto/error.h"

static inline int ov_lmdb_error(int rc)
{
    switch (rc) {
    case MDB_SUCCESS:
        return OV_OK;
    case MDB_NOTFOUND:
        return OV_ENOTFOUND;
    case MDB_MAP_FULL:
        return OV_EFULL;
    case ENOMEM:
        return OV_ENOMEM;
    default:
        return OV_ESTORE;
    }
}

#endif
