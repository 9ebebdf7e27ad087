package config

import (
	"github.com/sealgate/sealgate/keys"
	"github.com/sealgate/sealgate/keys/local"
)

// registerDrivers makes every key driver serve its scheme in kr and returns
// the schemes accepted for customer keys.
func registerDrivers(kr *keys.Keyring, c *Config) []string {
	kr.Register(local.Scheme, local.Opener{Dir: c.Keys.LocalDir})
	schemes := []string{local.Scheme}
	for scheme, o := range c.ExtraDrivers {
		kr.Register(scheme, o)
		schemes = append(schemes, scheme)
	}
	return schemes
}
