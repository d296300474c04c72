#include "engine/apiserver/apiserver.h"
