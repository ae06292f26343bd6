# The header of a test script's next step, after the time the step before it took (bash's
# SECONDS), so that a CI log shows where a script's minutes go. Sourced by the scripts/test-*
# scripts (each has cd'd to the repository's root); the last step's time is in scripts/test's
# summary, as the whole script's.
step() {
  if [ -n "${step_began:-}" ]; then
    printf '(that step: %s s)\n' "$((SECONDS - step_began))"
  fi
  step_began=$SECONDS
  printf '\n==> %s\n' "$*"
}
