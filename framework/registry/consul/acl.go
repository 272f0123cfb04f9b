package consul

import (
	"errors"
	"fmt"
	"strings"
	"sync/atomic"

	"github.com/hashicorp/consul/api"
)

// ErrPermissionDenied is returned (wrapped) when Consul's ACLs refuse a
// request or hide what a read asked for. The message names the permission
// the registry's token lacks. Compare with errors.Is.
var ErrPermissionDenied = errors.New("permission denied by Consul's ACLs")

// aclState holds the ACL warnings already logged by a Registry.
type aclState struct {
	partlyHiddenLogged atomic.Bool
}

// aclError turns Consul's 403 answers into errors wrapping
// ErrPermissionDenied. Consul's own message names the permission missing
// ("token ... lacks permission 'service:write' on \"x\""); an unknown token
// ("ACL not found") is said in words that point at the setting.
func aclError(err error) error {
	var se api.StatusError
	if !errors.As(err, &se) || se.Code != 403 {
		return err
	}
	body := strings.TrimSpace(se.Body)
	if strings.Contains(body, "ACL not found") {
		return fmt.Errorf("%w: Consul does not know the ACL token given (ACL not found): check %s or %s", ErrPermissionDenied, api.HTTPTokenEnvName, api.HTTPTokenFileEnvName)
	}
	return fmt.Errorf("%w: %s", ErrPermissionDenied, body)
}

// instancesNeed names the permissions reading a service's instances takes.
func instancesNeed(name string) string {
	return fmt.Sprintf("service:read on %q and node:read on the nodes it runs on", name)
}

// namesNeed names the permission listing the services takes.
const namesNeed = "service:read on the services (service_prefix \"\" { policy = \"read\" })"

// hiddenByACL returns an error wrapping ErrPermissionDenied when an empty
// answer described by meta is empty because of ACLs: Consul says it left
// results out (it says so only to a request carrying a token), or, when
// anonymousToo, no token is configured and Consul's default policy is deny,
// so the anonymous token sees nothing it was not granted. need names the
// permissions the read takes.
func (r *Registry) hiddenByACL(meta *api.QueryMeta, anonymousToo bool, need string) error {
	switch {
	case meta.ResultsFilteredByACLs:
		return fmt.Errorf("%w: Consul left out what this token may not read; it needs %s", ErrPermissionDenied, need)
	case anonymousToo && r.anonymous && meta.DefaultACLPolicy == "deny":
		return fmt.Errorf("%w: no ACL token is set (%s or %s) and Consul's default ACL policy is deny: reading needs a token with %s", ErrPermissionDenied, api.HTTPTokenEnvName, api.HTTPTokenFileEnvName, need)
	}
	return nil
}

// partlyHidden logs, once per registry, that Consul's ACLs left some
// results out of an answer that still had others.
func (r *Registry) partlyHidden(need string) {
	if r.acl.partlyHiddenLogged.CompareAndSwap(false, true) {
		r.log.Warn("Consul's ACLs hid some instances from this token; give it node:read on every node and service:read on the services to see them all", "example", need)
	}
}
