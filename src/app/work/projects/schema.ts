/** The projects API contract: bodies, parameters and responses, with their inferred types. */
import { Type, type Static } from 'typebox';
import { IdParams, PROBLEM_RESPONSES, Timestamp, Uuid } from '../../schema.ts';
import { Cursor, Limit, PageOf } from '../pagination.ts';
import { IfMatchHeaders } from '../schema.ts';

/** Short upper-case code that prefixes the keys of the project's tasks (`WEB-12`). */
export const ProjectKey = Type.String({ pattern: '^[A-Z][A-Z0-9]{1,9}$' });
const Name = Type.String({ minLength: 1, maxLength: 200 });
const Description = Type.String({ maxLength: 10_000 });

export const Project = Type.Object(
  { id: Uuid, key: ProjectKey, name: Name, description: Description, createdAt: Timestamp, updatedAt: Timestamp },
  { additionalProperties: false },
);
export type ProjectView = Static<typeof Project>;

export const CreateProjectBody = Type.Object(
  { key: ProjectKey, name: Name, description: Type.Optional(Description) },
  { additionalProperties: false },
);
export type CreateProjectInput = Static<typeof CreateProjectBody>;

/** The key is fixed once created: task keys derive from it and are quoted in links and commits. */
export const UpdateProjectBody = Type.Object(
  { name: Type.Optional(Name), description: Type.Optional(Description) },
  { additionalProperties: false, minProperties: 1 },
);
export type UpdateProjectInput = Static<typeof UpdateProjectBody>;

export const ListProjectsQuery = Type.Object({ cursor: Type.Optional(Cursor), limit: Type.Optional(Limit) }, { additionalProperties: false });

export const ProjectPage = PageOf(Project);

export const createProjectRoute = { summary: 'Create a project, with the default workflow', body: CreateProjectBody, response: { 201: Project, ...PROBLEM_RESPONSES } };
export const listProjectsRoute = { summary: 'List projects, oldest first', querystring: ListProjectsQuery, response: { 200: ProjectPage, ...PROBLEM_RESPONSES } };
export const getProjectRoute = { summary: 'One project', params: IdParams, response: { 200: Project, ...PROBLEM_RESPONSES } };
export const updateProjectRoute = { summary: "Change a project's name or description", params: IdParams, headers: IfMatchHeaders, body: UpdateProjectBody, response: { 200: Project, ...PROBLEM_RESPONSES } };
export const deleteProjectRoute = { summary: 'Delete a project with all its tasks', params: IdParams, headers: IfMatchHeaders, response: { 204: Type.Null(), ...PROBLEM_RESPONSES } };
