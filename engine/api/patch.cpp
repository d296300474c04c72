#include "engine/api/patch.h"
