// TODO(cluster helper)
