/** What the provider is sent: the scene's prompt, then the project's style. */
export function fullPromptOf(prompt: string, style: string | null): string {
  const trimmed = prompt.trim();
  return style && style.trim() ? `${trimmed}. Style: ${style.trim()}` : trimmed;
}
