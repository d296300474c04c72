#include "engine/api/kinds.h"
