package config

import (
	"github.com/sealgate/sealgate/keys"
	"github.com/sealgate/sealgate/keys/local"
)

// customerKeySchemes are the key URI schemes accepted for customer keys.
var customerKeySchemes = []string{local.Scheme}

// registerDrivers makes every key driver serve its scheme in kr.
func registerDrivers(kr *keys.Keyring, c *Config) {
	kr.Register(local.Scheme, local.Opener{Dir: c.Keys.LocalDir})
}
