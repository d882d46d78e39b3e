//go:build tools

// Package tools pins the main packages the local stack builds from this module.
package tools

import (
	_ "helm.sh/helm/v4/cmd/helm"
)
