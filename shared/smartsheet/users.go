package smartsheet

import (
	"context"
	"fmt"
	"strings"
)

// GetUser reads a user's profile (GET /users/{userId}): how a webhook
// event's userId becomes an email and a name.
func (c *Client) GetUser(ctx context.Context, userID int64) (*UserProfile, error) {
	var u UserProfile
	if err := c.doJSON(ctx, "GET /users/{userId}", "GET", "/users/"+id(userID), nil, nil, &u, 0); err != nil {
		return nil, fmt.Errorf("get user %d: %w", userID, err)
	}
	return &u, nil
}

// DisplayName is the profile's name, else its first and last names joined.
func (u *UserProfile) DisplayName() string {
	if u.Name != "" {
		return u.Name
	}
	return strings.TrimSpace(u.FirstName + " " + u.LastName)
}
