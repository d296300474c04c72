#include "engine/api/managed_fields.h"
