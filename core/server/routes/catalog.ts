/**
 * What a user may use: `me` (name, effective limits, uploads allowed), `recipes` (the allow-list),
 * `recipes/:name` (description and JSON Schema of its parameters) and `datasets`.
 *
 * @module
 */
import { userLimits } from "../config.ts";
import { HttpError, json } from "../http.ts";
import { describeRecipe, type RecipeDescription } from "../sandbox.ts";
import type { AppContext, Route } from "./route.ts";

/** The catalogue routes over `ctx`. */
export function catalogRoutes(ctx: AppContext): Route[] {
  const { config } = ctx;
  /** Recipe descriptions, cached by path and modification time (each costs a sandbox start). */
  const described = new Map<string, { mtime: number; info: Promise<RecipeDescription> }>();

  async function recipeInfo(name: string): Promise<Response> {
    if (!Object.hasOwn(config.recipes, name)) throw new HttpError(404, `no recipe '${name}'`);
    const path = config.recipes[name];
    const mtime = (await Deno.stat(path).catch(() => null))?.mtime?.getTime() ?? 0;
    let entry = described.get(path);
    if (!entry || entry.mtime !== mtime) {
      entry = { mtime, info: (ctx.describeRecipe ?? describeRecipe)(path) };
      described.set(path, entry);
    }
    try {
      const info = await entry.info;
      return json({ name, description: info.description, params: info.schema });
    } catch (e) {
      described.delete(path);
      throw new HttpError(500, `recipe '${name}' cannot be loaded: ${(e as Error).message}`);
    }
  }

  return [
    {
      path: "me",
      methods: {
        GET: ({ user }) =>
          json({
            user: user.name,
            limits: userLimits(config, user),
            allowUploadedRecipes: user.allowUploadedRecipes ?? config.allowUploadedRecipes,
          }),
      },
    },
    { path: "recipes", methods: { GET: () => json({ recipes: Object.keys(config.recipes) }) } },
    { path: "recipes/:name", methods: { GET: ({ params }) => recipeInfo(params.name) } },
    { path: "datasets", methods: { GET: () => json({ datasets: Object.keys(config.datasets) }) } },
  ];
}
